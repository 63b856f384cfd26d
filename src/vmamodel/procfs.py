"""/proc/PID/maps and /proc/PID/smaps text (fs/proc/task_mmu.c show_map_vma,
show_smap, show_smap_vma_flags)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmamodel.constants import PAGE_SHIFT, VM, VM_MNEMONICS

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma

#: seq_setwidth(m, 25 + sizeof(void *) * 6 - 1): the name column starts one past this.
NAME_PAD = 72


def escape_path(path: str) -> str:
    """seq_path() escapes a newline in a path as ``\\012``."""
    return path.replace("\n", "\\012")


def get_vma_name(mm: AddressSpace, vma: Vma) -> str:
    """get_vma_name(): file path (or [anon_shmem:NAME]), ->name(), [heap], [stack],
    [anon:NAME], or nothing."""
    if vma.vm_file is not None:
        if vma.anon_name is not None:
            return f"[anon_shmem:{vma.anon_name}]"
        return escape_path(vma.vm_file.display_name())
    ops = vma.vm_ops
    if ops is not None and ops.name is not None:
        name = ops.name(vma)
        if name:
            return name
    if vma.vm_start < mm.current_brk and vma.vm_end > mm.start_brk:
        return "[heap]"
    if mm.start_stack and vma.vm_start <= mm.start_stack <= vma.vm_end:
        return "[stack]"
    if vma.anon_name is not None:
        return f"[anon:{vma.anon_name}]"
    return ""


def maps_line(mm: AddressSpace, vma: Vma) -> str:
    """show_map_vma(): one line, newline included."""
    flags = vma.vm_flags
    perms = (
        ("r" if flags & VM.READ else "-")
        + ("w" if flags & VM.WRITE else "-")
        + ("x" if flags & VM.EXEC else "-")
        + ("s" if flags & VM.MAYSHARE else "p")
    )
    file = vma.vm_file
    if file is not None:
        offset = vma.vm_pgoff << PAGE_SHIFT
        dev = f"{file.dev[0]:02x}:{file.dev[1]:02x}"
        ino = file.ino
    else:
        offset, dev, ino = 0, "00:00", 0
    prefix = f"{vma.vm_start:08x}-{vma.vm_end:08x} {perms} {offset:08x} {dev} {ino} "
    name = get_vma_name(mm, vma)
    if not name:
        return prefix + "\n"
    return prefix.ljust(NAME_PAD) + " " + name + "\n"


def _shown_vmas(mm: AddressSpace) -> list[Vma]:
    """The VMAs procfs walks: the tree, then the gate VMA (get_gate_vma) if there is one."""
    vmas = list(mm.tree)
    if mm.gate_vma is not None:
        vmas.append(mm.gate_vma)
    return vmas


def render_maps(mm: AddressSpace) -> str:
    return "".join(maps_line(mm, vma) for vma in _shown_vmas(mm))


def vm_flags_line(flags: int) -> str:
    """show_smap_vma_flags(): two-letter names in bit order; unknown bits print "??"."""
    names = []
    bit = 0
    while flags >> bit:
        if flags >> bit & 1:
            mnemonic = VM_MNEMONICS.get(bit, "??")
            if mnemonic:
                names.append(mnemonic + " ")
        bit += 1
    return "VmFlags: " + "".join(names) + "\n"


def smaps_block(mm: AddressSpace, vma: Vma) -> str:
    """show_smap(): the header, the size lines and VmFlags. The page-count lines (Rss, Pss,
    ...) need page contents the model does not track, so they are left out."""
    size_kb = (vma.vm_end - vma.vm_start) >> 10
    return (
        maps_line(mm, vma)
        + f"Size:           {size_kb:8d} kB\n"
        + "KernelPageSize:        4 kB\n"
        + "MMUPageSize:           4 kB\n"
        + (f"ProtectionKey:  {vma.pkey:8d}\n" if mm.pkeys_enabled else "")
        + vm_flags_line(int(vma.vm_flags))
    )


def render_smaps(mm: AddressSpace) -> str:
    return "".join(smaps_block(mm, vma) for vma in _shown_vmas(mm))
