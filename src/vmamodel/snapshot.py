"""A model seeded from a real process's /proc/PID/maps (``AddressSpace.from_maps``).

Each maps line becomes one VMA with the same range, offset, file and name:

- a file line becomes a VMA of a :class:`~vmamodel.file.File` with that path, device and
  inode (one File per inode, so that VMAs of one file compare equal for merging); a name with
  " (deleted)" gives a deleted File; memfds, shared anonymous memory (``/dev/zero``) and SysV
  segments, and everything on the kernel's internal shmem device, are shmem files;
- ``[heap]`` sets the program break: ``start_brk`` (unless given) and ``current_brk``;
- ``[stack]`` is the stack (``start_stack`` inside it) with VM_GROWSDOWN;
- ``[vdso]``, ``[vvar]`` and ``[vvar_vclock]`` are special mappings
  (_install_special_mapping): they cannot be split and, being VM_DONTEXPAND, never merge;
- ``[vsyscall]`` (above TASK_SIZE) is the gate VMA: shown in maps, outside the tree;
- ``[anon:NAME]`` is anonymous memory named NAME, ``[anon_shmem:NAME]`` named shared
  anonymous memory (a /dev/zero shmem file); both need CONFIG_ANON_VMA_NAME;
- other lines are anonymous memory.

A regular file's operations come from its filesystem, as the kernel's ``file->f_op`` would:
``fs_of`` maps a device number to a filesystem type (as /proc/self/mountinfo names it;
``vmamodel.host.traits.host_filesystems()`` reads this machine's). ext4, xfs and btrfs place
mappings with ``thp_get_unmapped_area`` (their file_operations set it), tmpfs files are shmem,
other filesystems get the generic operations. A device that ``fs_of`` does not name (or no
``fs_of``) is taken to be a disk filesystem of the first kind, the common case for programs and
libraries; pass ``fs_of`` for snapshots of other machines.

vm_flags come from the smaps text when one is given (its VmFlags, exactly), else they are
inferred from the perms column as the kernel sets them for ordinary mappings (see
:func:`infer_vm_flags`). With smaps, a VMA holding anonymous pages gets an anon_vma of its
own. Accounting (total_vm and its parts, locked_vm, the commit charge) follows the flags.

``mmap_base``: given, or (default layout) computed like mmap_base() in arch/x86/mm/mmap.c
for a process without randomisation, from TASK_SIZE and RLIMIT_STACK, when the stack ends at
TASK_SIZE. When it does not (the process was randomised), the end of the highest mapping
below the stack stands in for it: that is where the first top-down mapping (the loader)
ended, exact only while nothing was placed above it by a hint.
"""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vmamodel.accounting import vm_stat_account
from vmamodel.constants import (
    DEFAULT_RLIMIT_STACK,
    O_RDONLY,
    O_RDWR,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    STACK_GUARD_GAP,
    TASK_SIZE,
    VM,
    page_align,
)
from vmamodel.file import (
    GENERIC_FILE_VM_OPS,
    SHMEM_DEV,
    SHMEM_VM_OPS,
    File,
    FileOperations,
    GenericFileOperations,
    ShmemFileOperations,
    VmOperations,
)
from vmamodel.hooks import oserror
from vmamodel.parse import MapsEntry, parse_maps_line, parse_smaps
from vmamodel.unmapped_area import ThpFileOperations
from vmamodel.vma import AnonVma, Vma

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace

__all__ = [
    "THP_FILESYSTEMS",
    "SpecialMappingOps",
    "address_space_from_maps",
    "file_operations_for",
    "infer_vm_flags",
]

#: Names of the x86-64 special mappings and the vm_flags their installers give them.
SPECIAL_FLAGS: dict[str, int] = {
    # vdso_install / map_vdso: the vDSO text, with VM_MAYWRITE so debuggers can poke it.
    "[vdso]": VM.READ | VM.EXEC | VM.MAYREAD | VM.MAYWRITE | VM.MAYEXEC | VM.DONTEXPAND,
    # vdso_install_vvar_mapping: data pages inserted by pfn.
    "[vvar]": VM.READ | VM.MAYREAD | VM.IO | VM.DONTDUMP | VM.PFNMAP | VM.DONTEXPAND,
    "[vvar_vclock]": VM.READ | VM.MAYREAD | VM.IO | VM.DONTDUMP | VM.PFNMAP | VM.DONTEXPAND,
}
GATE_NAME = "[vsyscall]"
HEAP_NAME = "[heap]"
STACK_NAME = "[stack]"
DELETED = " (deleted)"
SHMEM_PREFIXES = ("/memfd:", "/SYSV", "/dev/zero")
#: Shmem files that are always open read-write: memfd_create(2), shmem_zero_setup().
WRITABLE_SHMEM = ("/memfd:", "/dev/zero (deleted)")


#: Filesystems whose file_operations set get_unmapped_area = thp_get_unmapped_area
#: (ext4_file_operations, xfs_file_operations, btrfs_file_operations).
THP_FILESYSTEMS = frozenset({"ext4", "xfs", "btrfs"})
#: Filesystems whose regular files are shmem files (shmem_file_operations).
SHMEM_FILESYSTEMS = frozenset({"tmpfs", "shmem"})
#: The filesystem assumed for a device that fs_of does not name.
DEFAULT_FILESYSTEM = "ext4"


def file_operations_for(fstype: str) -> FileOperations:
    """The file_operations a regular file of filesystem ``fstype`` has for mmap: its
    mmap_prepare hook and its get_unmapped_area (thp_get_unmapped_area for ext4, xfs,
    btrfs; shmem's for tmpfs; none, so the layout's allocator, elsewhere)."""
    if fstype in THP_FILESYSTEMS:
        return ThpFileOperations()
    if fstype in SHMEM_FILESYSTEMS:
        return ShmemFileOperations()
    return GenericFileOperations()


class SpecialMappingOps(VmOperations):
    """special_mapping_vmops (mm/vma.c): named, never split, nothing to undo on mremap."""

    def __init__(self, name: str) -> None:
        self._name = name

    def name(self, vma: Vma) -> str | None:
        return self._name

    def may_split(self, vma: Vma, addr: int) -> None:
        """special_mapping_split(): the kernel relies on the page count of the mapping."""
        raise oserror(errno.EINVAL, f"{self._name} cannot be split")

    def close(self, vma: Vma) -> None:
        """special_mapping_close(): present (so no merge may remove the VMA), does nothing."""

    def mremap(self, vma: Vma) -> None:
        """special_mapping_mremap(): the vDSO only records its new place."""

    def __repr__(self) -> str:
        return f"SpecialMappingOps({self._name})"


def infer_vm_flags(entry: MapsEntry) -> int:
    """The vm_flags the kernel gives a mapping with these perms and this name: r/w/x; the
    VM_MAY* bits of do_mmap (a shared read-only mapping is taken to be of a file opened
    read-only, unless it is a memfd or shared anonymous memory, which are always open for
    writing); VM_ACCOUNT for private writable memory; VM_GROWSDOWN for the stack. What maps
    cannot show stays off: VM_ACCOUNT kept after mprotect to read-only, VM_GROWSDOWN of other
    mappings, VM_LOCKED, VM_NORESERVE, madvise flags. Pass smaps for those."""
    special = SPECIAL_FLAGS.get(entry.name)
    if special is not None:
        return special
    perms = entry.perms
    flags = VM(0)
    if perms[0] == "r":
        flags |= VM.READ
    if perms[1] == "w":
        flags |= VM.WRITE
    if perms[2] == "x":
        flags |= VM.EXEC
    if entry.name == GATE_NAME:
        return flags
    flags |= VM.MAYREAD | VM.MAYEXEC
    if entry.shared:
        flags |= VM.MAYSHARE
        if perms[1] == "w" or entry.name.startswith(WRITABLE_SHMEM):
            flags |= VM.SHARED | VM.MAYWRITE
        return flags
    flags |= VM.MAYWRITE
    if perms[1] == "w":
        flags |= VM.ACCOUNT
    if entry.name == STACK_NAME:
        flags |= VM.GROWSDOWN
    return flags


def _is_shmem(entry: MapsEntry, path: str) -> bool:
    return entry.dev == SHMEM_DEV or path.startswith(SHMEM_PREFIXES)


def _file_kind(path: str) -> str:
    if path.startswith("/memfd:"):
        return "memfd"
    if path == "/dev/zero":
        return "shmem_zero"
    return "regular"


class _FileTable:
    """One File per (device, inode, path) met in the maps text, or the caller's own."""

    def __init__(self, given: dict[str, File], fs_of: Mapping[tuple[int, int], str]) -> None:
        self._given = given
        self._fs_of = fs_of
        self._files: dict[tuple[tuple[int, int], int, str], File] = {}

    def get(self, entry: MapsEntry, vm_flags: int) -> File:
        deleted = entry.name.endswith(DELETED)
        path = entry.name.removesuffix(DELETED) if deleted else entry.name
        key = (entry.dev, entry.inode, path)
        file = self._files.get(key) or self._given.get(path)
        if file is None:
            file = self._make(entry, path, deleted, vm_flags)
        self._files[key] = file
        return file

    def _make(self, entry: MapsEntry, path: str, deleted: bool, vm_flags: int) -> File:
        fstype = self._fs_of.get(entry.dev, DEFAULT_FILESYSTEM)
        shmem = _is_shmem(entry, path) or fstype in SHMEM_FILESYSTEMS
        kind = _file_kind(path) if shmem else "regular"
        writable = vm_flags & (VM.MAYSHARE | VM.MAYWRITE) == VM.MAYSHARE | VM.MAYWRITE
        extra: dict[str, Any] = {}
        if kind == "memfd":
            extra["name"] = path.removeprefix("/memfd:")
        return File(
            path=path,
            flags=O_RDWR if writable or shmem else O_RDONLY,
            f_op=ShmemFileOperations() if shmem else file_operations_for(fstype),
            dev=entry.dev,
            ino=entry.inode,
            deleted=deleted,
            shmem=shmem,
            kind=kind,
            extra=extra,
        )


def _flags_by_range(smaps: str | None) -> dict[tuple[int, int], tuple[int, bool]]:
    """(start, end) -> (VmFlags value, holds anonymous pages) from smaps text."""
    if smaps is None:
        return {}
    return {
        (e.start, e.end): (int(e.vm_flags), e.fields.get("Anonymous", 0) > 0)
        for e in parse_smaps(smaps)
    }


def _infer_mmap_base(entries: list[MapsEntry], kwargs: dict[str, Any]) -> int:
    """mmap_base() without randomisation, or the top of the mappings below the stack."""
    # Not at module level: mm.py imports this module for AddressSpace.from_maps.
    from vmamodel.mm import mmap_base

    task_size = int(kwargs.get("task_size", TASK_SIZE))
    if kwargs.get("legacy_layout"):
        return page_align(task_size // 3)
    stacks = [e for e in entries if e.name == STACK_NAME]
    if not stacks or stacks[0].end == task_size:
        rlimit = int(kwargs.get("rlimit_stack", DEFAULT_RLIMIT_STACK))
        return mmap_base(task_size, rlimit, STACK_GUARD_GAP)
    below = [e.end for e in entries if e.end <= stacks[0].start]
    return max(below) if below else stacks[0].start


def _vm_ops(entry: MapsEntry, file: File | None) -> VmOperations | None:
    if entry.name in SPECIAL_FLAGS or entry.name == GATE_NAME:
        return SpecialMappingOps(entry.name)
    if file is None:
        return None
    return SHMEM_VM_OPS if file.shmem else GENERIC_FILE_VM_OPS


def _account(mm: AddressSpace, vma: Vma) -> None:
    """The counters mmap_region() would have moved for this VMA."""
    pages = vma.pages
    vm_stat_account(mm, vma.vm_flags, pages)
    if vma.vm_flags & VM.ACCOUNT:
        mm.committed_pages += pages
    if vma.vm_flags & VM.LOCKED:
        mm.locked_vm += pages


def _name_roles(mm: AddressSpace, entry: MapsEntry, brk_given: bool, first_heap: bool) -> None:
    """[heap] and [stack] are names the kernel derives from mm fields: set those fields. A
    heap split in several lines (by mprotect, say) starts at its first one."""
    if entry.name == HEAP_NAME:
        if not brk_given and first_heap:
            mm.start_brk = entry.start
        mm.current_brk = entry.end
    elif entry.name == STACK_NAME:
        mm.start_stack = entry.end - PAGE_SIZE


def _check_name(mm: AddressSpace, entry: MapsEntry) -> None:
    name = entry.name
    known = (HEAP_NAME, STACK_NAME, GATE_NAME, *SPECIAL_FLAGS)
    if entry.anon_name is not None:
        if not mm.anon_vma_name_enabled:
            raise ValueError(f"anonymous VMA name without CONFIG_ANON_VMA_NAME: {entry.line!r}")
    elif name.startswith("[") and name not in known and not entry.has_file:
        raise ValueError(f"cannot seed a VMA named {name!r}: {entry.line!r}")
    elif name and not name.startswith("[") and not entry.has_file:
        raise ValueError(f"an anonymous line (device 00:00, inode 0) with the name {name!r}: "
                         f"{entry.line!r}")


def _numbered(text: str) -> list[tuple[int, MapsEntry]]:
    """(line number, entry) of each maps line; a malformed one is a ValueError naming it."""
    out = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line:
            try:
                out.append((number, parse_maps_line(line)))
            except ValueError as err:
                raise ValueError(f"maps line {number}: {err}") from None
    return out


UNIQUE_NAMES = (STACK_NAME, GATE_NAME)


def _check_lines(mm: AddressSpace, numbered: list[tuple[int, MapsEntry]]) -> None:
    """What no kernel prints: an empty or inverted or unaligned range, lines out of order or
    overlapping, a second [stack] or [vsyscall], more VMAs than max_map_count, a mapping
    above TASK_SIZE other than the gate, an anonymous line inside the heap not named
    [heap]. Each a ValueError naming the line."""
    seen: set[str] = set()
    count = 0
    previous: MapsEntry | None = None
    for number, entry in numbered:
        def bad(problem: str, number: int = number, entry: MapsEntry = entry) -> ValueError:
            return ValueError(f"maps line {number}: {problem}: {entry.line!r}")

        if entry.start >= entry.end:
            raise bad("start not below end")
        if (entry.start | entry.end) & ~PAGE_MASK:
            raise bad("range not page aligned")
        if previous is not None and entry.start < previous.end:
            raise bad("out of order or overlapping the line before")
        if entry.name in UNIQUE_NAMES:
            if entry.name in seen:
                raise bad(f"a second {entry.name}")
            seen.add(entry.name)
        if entry.start >= mm.task_size and entry.name != GATE_NAME:
            raise bad("above TASK_SIZE")
        if entry.start < mm.task_size:
            count += 1
            if count > mm.max_map_count:
                raise bad(f"more than max_map_count ({mm.max_map_count}) VMAs")
        previous = entry
    heaps = [entry for _, entry in numbered if entry.name == HEAP_NAME]
    if heaps:
        for number, entry in numbered:
            if (entry.name != HEAP_NAME and not entry.has_file and entry.start < heaps[-1].end
                    and entry.end > heaps[0].start):
                raise ValueError(f"maps line {number}: anonymous memory inside the heap "
                                 f"not named [heap]: {entry.line!r}")


def _build_vma(
    mm: AddressSpace, entry: MapsEntry, files: _FileTable, flags: dict[tuple[int, int],
    tuple[int, bool]],
) -> Vma:
    _check_name(mm, entry)
    anon_name = entry.anon_name
    if anon_name is not None and entry.has_file:
        # A named shared anonymous mapping: the shmem file maps would show without the name.
        entry = dataclasses.replace(entry, name="/dev/zero" + DELETED)
    vm_flags, has_anon = flags.get((entry.start, entry.end), (infer_vm_flags(entry), False))
    file = files.get(entry, vm_flags) if entry.has_file else None
    pgoff = entry.offset >> PAGE_SHIFT if file is not None else entry.start >> PAGE_SHIFT
    vma = Vma(
        mm, mm.next_vma_id(), entry.start, entry.end, pgoff, vm_flags, file,
        _vm_ops(entry, file),
    )
    if has_anon:
        vma.anon_vma = AnonVma(mm.next_anon_vma_id())
    vma.anon_name = anon_name
    return vma


def address_space_from_maps(cls: type[AddressSpace], text: str, **kwargs: Any) -> AddressSpace:
    """An address space holding the VMAs of ``text`` (/proc/PID/maps).

    Keyword arguments: ``smaps`` (the same process's /proc/PID/smaps, for exact VmFlags and
    anon_vmas), ``files`` (path -> File to use for that path instead of a new File),
    ``fs_of`` (device number -> filesystem type, for the operations of regular files), and
    everything the ``cls`` constructor takes (``mmap_base``, ``rlimit_stack``,
    ``legacy_layout``, ...). Raises ValueError for text the model cannot represent.
    """
    smaps: str | None = kwargs.pop("smaps", None)
    given_files: dict[str, File] = kwargs.pop("files", None) or {}
    fs_of: Mapping[tuple[int, int], str] = kwargs.pop("fs_of", None) or {}
    numbered = _numbered(text)
    entries = [entry for _, entry in numbered]
    if kwargs.get("mmap_base") is None:
        kwargs["mmap_base"] = _infer_mmap_base(entries, kwargs)
    brk_given = "start_brk" in kwargs
    mm = cls(**kwargs)
    flags = _flags_by_range(smaps)
    missing = [e.line for e in entries if flags and (e.start, e.end) not in flags]
    if missing:
        raise ValueError(f"smaps has no block for {missing[0]!r}")
    files = _FileTable(given_files, fs_of)
    _check_lines(mm, numbered)
    first_heap = True
    for number, entry in numbered:
        try:
            vma = _build_vma(mm, entry, files, flags)
        except ValueError as err:
            raise ValueError(f"maps line {number}: {err}") from None
        _name_roles(mm, entry, brk_given, first_heap)
        first_heap = first_heap and entry.name != HEAP_NAME
        if entry.start >= mm.task_size:
            mm.gate_vma = vma
            continue
        mm.tree.insert(vma)
        mm.map_count += 1
        _account(mm, vma)
    mm.validate_mm()
    return mm
