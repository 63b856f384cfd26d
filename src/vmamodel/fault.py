"""User access to memory (arch/x86/mm/fault.c, mm/memory.c) and anon_vma allocation
(mm/rmap.c __anon_vma_prepare, mm/vma.c find_mergeable_anon_vma)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from vmamodel.access_fault import AccessFault as AccessFault
from vmamodel.constants import (
    PAGE_SHIFT,
    PAGE_SIZE,
    VM_ACCESS_FLAGS,
    VM_IGNORE_MERGE,
    VM_IO,
    VM_MIXEDMAP,
    VM_PFNMAP,
    VM_SHARED,
    VM_WRITE,
    pfn_up,
)
from vmamodel.events import AnonVmaAssigned
from vmamodel.hooks import maybe_inject
from vmamodel.mempolicy import mpol_equal
from vmamodel.mm_types import next_anon_vma_id
from vmamodel.stack import expand_stack_for_fault
from vmamodel.vma import AnonVma, vma_policy

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.mm_types import MmStruct
    from vmamodel.vma import Vma


def anon_vma_compatible(a: Vma, b: Vma) -> bool:
    """anon_vma_compatible(): adjacent, same policy and file, flags differing only in
    access and sticky bits, pgoff contiguous."""
    return (
        a.vm_end == b.vm_start
        and mpol_equal(vma_policy(a), vma_policy(b))
        and a.vm_file is b.vm_file
        and not (a.vm_flags ^ b.vm_flags) & ~(VM_ACCESS_FLAGS | VM_IGNORE_MERGE)
        and b.vm_pgoff == a.vm_pgoff + ((b.vm_start - a.vm_start) >> PAGE_SHIFT)
    )


def _reusable(old: Vma, a: Vma, b: Vma) -> AnonVma | None:
    """reusable_anon_vma(): old's anon_vma, if compatible and never forked."""
    if anon_vma_compatible(a, b) and old.anon_vma is not None and not old.fork_child:
        return old.anon_vma
    return None


def find_mergeable_anon_vma(mm: MmStruct, vma: Vma) -> AnonVma | None:
    """find_mergeable_anon_vma(): try the next VMA, then the previous one."""
    nxt = mm.tree.next_of(vma)
    if nxt is not None:
        found = _reusable(nxt, vma, nxt)
        if found is not None:
            return found
    prev = mm.tree.prev_of(vma)
    if prev is not None:
        return _reusable(prev, prev, vma)
    return None


def anon_vma_prepare(mm: MmStruct, vma: Vma) -> None:
    """__anon_vma_prepare(): give a VMA its anon_vma at its first CoW or anonymous write."""
    if vma.anon_vma is not None:
        return
    if mm.injector.armed:
        maybe_inject(mm, "anon_vma_alloc")
    reused = find_mergeable_anon_vma(mm, vma)
    anon = reused if reused is not None else AnonVma(next_anon_vma_id(mm))
    vma.anon_vma = anon
    vma.fork_child = False
    if mm.tracer.active:
        mm.tracer.emit(AnonVmaAssigned(vma.id, anon.id, anon.id if reused is not None else None))


def access_error(vma: Vma, write: bool) -> bool:
    """access_error() (x86): writes need VM_WRITE; reads need any access bit, because x86
    page tables cannot express write- or exec-only."""
    if write:
        return not vma.vm_flags & VM_WRITE
    return not vma.vm_flags & VM_ACCESS_FLAGS


def beyond_eof(vma: Vma, addr: int) -> bool:
    """A file page past i_size: the fault handler answers VM_FAULT_SIGBUS. An anonymous VMA
    with a file (private /dev/zero: no vm_ops) takes anonymous faults."""
    file = vma.vm_file
    if file is None or vma.vm_ops is None or vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP | VM_IO):
        return False
    index = vma.vm_pgoff + ((addr - vma.vm_start) >> PAGE_SHIFT)
    return index >= pfn_up(file.size)


def handle_mm_fault(mm: MmStruct, vma: Vma, addr: int, write: bool) -> None:
    """handle_mm_fault(): the VMA-visible effect of a fault. A write fault on a private
    mapping (anonymous, or CoW of a file page) needs an anon_vma; a read fault on private
    anonymous memory maps the shared zero page and needs none."""
    if beyond_eof(vma, addr):
        raise AccessFault("SIGBUS", f"{addr:#x} is past the end of the file")
    page = addr & ~(PAGE_SIZE - 1)
    if write and not vma.vm_flags & VM_SHARED:
        if not vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP):
            anon_vma_prepare(mm, vma)
            mm.pages.anon.add(page)
    mm.pages.present.add(page)


def do_user_addr_fault(mm: MmStruct, addr: int, write: bool) -> None:
    """do_user_addr_fault(): find the VMA (growing a stack if needed), check access."""
    vma = mm.tree.find(addr)
    if vma is None:
        raise AccessFault("SIGSEGV", f"no mapping at {addr:#x}")
    if vma.vm_start > addr:
        vma = expand_stack_for_fault(mm, vma, addr)
    if cast("AddressSpace", mm).pkey_denies_access(vma.pkey, write):
        raise AccessFault("SIGSEGV", f"protection key {vma.pkey} denies access at {addr:#x}")
    if access_error(vma, write):
        raise AccessFault("SIGSEGV", f"{'write' if write else 'read'} not permitted at {addr:#x}")
    if mm.pages.is_guard(addr):
        raise AccessFault("SIGSEGV", f"guard region at {addr:#x}")
    handle_mm_fault(mm, vma, addr, write)
