"""Unmapping (mm/vma.c): vms_gather_munmap_vmas, vms_complete_munmap_vmas, the abort path
used by a failed MAP_FIXED mmap, and do_vmi_munmap behind munmap(2)."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.accounting import (
    is_data_mapping,
    is_exec_mapping,
    is_stack_mapping,
    vm_unacct_memory,
)
from vmamodel.constants import PAGE_SIZE, VM_ACCOUNT, VM_LOCKED, VM_SEALED, page_align
from vmamodel.events import VmaRemoved
from vmamodel.hooks import maybe_inject, oserror, vma_close
from vmamodel.vma import __split_vma, drop_rare_fields

if TYPE_CHECKING:
    from vmamodel.mm_types import MmStruct
    from vmamodel.vma import Vma


class VmaMunmapStruct:
    """struct vma_munmap_struct: the VMAs being unmapped and what they held. As the kernel's
    struct on the stack, it is filled by init_vma_munmap() (the class has no __init__)."""

    __slots__ = (
        "clear_ptes",
        "data_vm",
        "end",
        "exec_vm",
        "locked_vm",
        "next",
        "nr_accounted",
        "nr_pages",
        "prev",
        "stack_vm",
        "start",
        "vma",
        "vmas",
    )

    vma: Vma | None
    start: int
    end: int
    vmas: list[Vma]
    prev: Vma | None
    next: Vma | None
    nr_pages: int
    locked_vm: int
    nr_accounted: int
    exec_vm: int
    stack_vm: int
    data_vm: int
    clear_ptes: bool


def init_vma_munmap(vms: VmaMunmapStruct, vma: Vma | None, start: int, end: int) -> None:
    """init_vma_munmap(): a gather of [start, end) from its first VMA, nothing counted yet.
    Without a VMA the kernel zeroes start and end; nothing reads them then (and MmapState,
    which embeds this struct, shares end with its own)."""
    vms.vma = vma
    vms.start = start
    vms.end = end
    vms.vmas = []
    vms.prev = None
    vms.next = None
    vms.nr_pages = vms.locked_vm = vms.nr_accounted = 0
    vms.exec_vm = vms.stack_vm = vms.data_vm = 0
    vms.clear_ptes = False


def _reattach(mm: MmStruct, vms: VmaMunmapStruct) -> None:
    """reattach_vmas(): put gathered VMAs back (splits made on the way stay)."""
    for vma in vms.vmas:
        vma.detached = False
        mm.tree.insert(vma)
    vms.vmas.clear()


def _detach(mm: MmStruct, vms: VmaMunmapStruct, vma: Vma) -> None:
    mm.tree.remove(vma)
    vma.detached = True
    vms.vmas.append(vma)
    pages = vma.pages
    flags = vma.vm_flags
    vms.nr_pages += pages
    if flags & VM_LOCKED:
        vms.locked_vm += pages
    if flags & VM_ACCOUNT:
        vms.nr_accounted += pages
    if is_exec_mapping(flags):
        vms.exec_vm += pages
    elif is_stack_mapping(flags):
        vms.stack_vm += pages
    elif is_data_mapping(flags):
        vms.data_vm += pages


def vms_gather_munmap_vmas(mm: MmStruct, vms: VmaMunmapStruct) -> None:
    """vms_gather_munmap_vmas(): split the ends and detach every VMA in [start, end).

    On error the detached VMAs are re-attached, but splits already made remain, as in the
    kernel. A head split strictly inside one VMA at the map_count limit fails with ENOMEM.
    The walk goes from VMA to VMA as the kernel's iterator does (for_each_vma_range, then
    vma_next and vma_prev): each step is beside the tree's last position, so only the
    first one may search.
    """
    tree = mm.tree
    vma = vms.vma
    assert vma is not None
    start, end = vms.start, vms.end
    if start > vma.vm_start:
        if end < vma.vm_end and mm.map_count >= mm.max_map_count:
            raise oserror(errno.ENOMEM, "munmap: splitting would pass max_map_count")
        if vma.vm_flags & VM_SEALED:
            raise oserror(errno.EPERM, "munmap: sealed VMA")
        vms.prev = __split_vma(mm, vma, start, new_below=True)
    else:
        vms.prev = tree.prev_of(vma)
    armed = mm.injector.armed
    nxt: Vma | None = vma
    try:
        while nxt is not None and nxt.vm_start < end:
            vma = nxt
            if vma.vm_flags & VM_SEALED:
                raise oserror(errno.EPERM, "munmap: sealed VMA")
            if vma.vm_end > end:
                nxt = __split_vma(mm, vma, end, new_below=False)
            else:
                nxt = tree.next_of(vma)
            if armed:
                maybe_inject(mm, "munmap_gather")
            _detach(mm, vms, vma)
    except OSError:
        _reattach(mm, vms)
        raise
    vms.next = nxt
    vms.clear_ptes = True


def vms_clear_ptes(mm: MmStruct, vms: VmaMunmapStruct) -> None:
    """vms_clear_ptes(): zap the pages (and guard markers) of the gathered range."""
    if not vms.clear_ptes:
        return
    for vma in vms.vmas:
        mm.pages.zap(vma.vm_start, vma.vm_end)
    vms.clear_ptes = False


def vms_clean_up_area(mm: MmStruct, vms: VmaMunmapStruct) -> None:
    """vms_clean_up_area(): before a MAP_FIXED replacement, zap and ->close the old VMAs.
    After this the old mappings cannot be restored."""
    if not vms.nr_pages:
        return
    vms_clear_ptes(mm, vms)
    for vma in vms.vmas:
        vma_close(mm, vma)


def remove_vma(mm: MmStruct, vma: Vma, reason: str) -> None:
    """remove_vma(): ->close (at most once), drop the file, free."""
    vma_close(mm, vma)
    vma.detached = True
    if mm.vm_policies or mm.uffd_ctxs:
        drop_rare_fields(mm, vma)
    if mm.tracer.active:
        mm.tracer.emit(VmaRemoved(vma.id, vma.vm_start, vma.vm_end, reason))


def vms_complete_munmap_vmas(mm: MmStruct, vms: VmaMunmapStruct, reason: str) -> None:
    """vms_complete_munmap_vmas(): the point of no return; stats, close, un-account.
    (Counters that would move by zero are left alone.)"""
    vmas = vms.vmas
    if vmas:
        mm.map_count -= len(vmas)
    if vms.locked_vm:
        mm.locked_vm -= vms.locked_vm
    if not vms.nr_pages:
        return
    vms_clear_ptes(mm, vms)
    mm.total_vm -= vms.nr_pages
    if vms.exec_vm:
        mm.exec_vm -= vms.exec_vm
    if vms.stack_vm:
        mm.stack_vm -= vms.stack_vm
    if vms.data_vm:
        mm.data_vm -= vms.data_vm
    for vma in vmas:
        remove_vma(mm, vma, reason)
    if vms.nr_accounted:
        vm_unacct_memory(mm, vms.nr_accounted)
    vmas.clear()


def vms_abort_munmap_vmas(mm: MmStruct, vms: VmaMunmapStruct) -> None:
    """vms_abort_munmap_vmas(): undo a gather if the old VMAs are intact, else finish the
    unmap and leave a hole (the documented outcome of a failed MAP_FIXED mmap)."""
    if not vms.nr_pages:
        return
    if vms.clear_ptes:
        _reattach(mm, vms)
        return
    vms_complete_munmap_vmas(mm, vms, "failed MAP_FIXED mmap")


def do_vmi_align_munmap(mm: MmStruct, vma: Vma, start: int, end: int) -> None:
    """do_vmi_align_munmap()."""
    vms = VmaMunmapStruct()
    init_vma_munmap(vms, vma, start, end)
    vms_gather_munmap_vmas(mm, vms)
    vms_complete_munmap_vmas(mm, vms, "munmap")


def do_munmap(mm: MmStruct, start: int, length: int) -> None:
    """do_vmi_munmap() / do_munmap(): validate, then unmap whatever lies in the range."""
    task_size = mm.task_size
    if start % PAGE_SIZE or start > task_size or length > task_size - start:
        raise oserror(errno.EINVAL, "munmap: bad address or length")
    end = start + page_align(length)
    if end == start:
        raise oserror(errno.EINVAL, "munmap: zero length")
    vma = mm.tree.find_intersection(start, end)
    if vma is None:
        return
    do_vmi_align_munmap(mm, vma, start, end)
