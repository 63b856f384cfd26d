"""brk(2): moving the program break (mm/mmap.c SYSCALL brk and check_brk_limits, mm/vma.c
do_brk_flags).

The heap is the range [start_brk, brk). Growing it either stretches the VMA that ends at the
old break or adds a fresh anonymous VMA; shrinking unmaps the tail. The syscall has no errno:
whatever goes wrong, it answers with the break it had before.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.accounting import may_expand_vm, security_vm_enough_memory, vm_unacct_memory
from vmamodel.constants import (
    MAP_FIXED,
    PAGE_SHIFT,
    PAGE_SIZE,
    VM,
    VM_DATA_DEFAULT_FLAGS,
    page_align,
)
from vmamodel.events import VmaCreated
from vmamodel.hooks import maybe_inject, oserror
from vmamodel.ksm import ksm_vma_flags
from vmamodel.merge import MergeState, VmaMergeStruct, vma_merge_new_range
from vmamodel.munmap import do_vmi_align_munmap
from vmamodel.populate import mm_populate
from vmamodel.unmapped_area import get_unmapped_area, vm_start_gap
from vmamodel.vma import Vma

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace

U64 = (1 << 64) - 1
RLIM_INFINITY = U64


def check_data_rlimit(mm: AddressSpace, new_brk: int) -> bool:
    """check_data_rlimit() (include/linux/mm.h): whether a break at ``new_brk`` plus the data
    segment exceeds a finite RLIMIT_DATA."""
    if mm.rlimit_data >= RLIM_INFINITY:
        return False
    used = (new_brk - mm.start_brk) + (mm.end_data - mm.start_data)
    return used > mm.rlimit_data


def check_brk_limits(mm: AddressSpace, addr: int, length: int) -> None:
    """check_brk_limits(): the range must be a valid MAP_FIXED placement, and a heap that
    mlockall(MCL_FUTURE) locks must fit RLIMIT_MEMLOCK (EAGAIN)."""
    get_unmapped_area(mm, None, addr, length, 0, MAP_FIXED)
    if not mm.mlock_future_ok(mm.def_flags, length):
        raise oserror(errno.EAGAIN, "brk: over RLIMIT_MEMLOCK")


def brk_vma_before(mm: AddressSpace, oldbrk: int) -> Vma | None:
    """vma_prev_limit(vmi, mm->start_brk): the VMA before the old break, unless it ends at or
    below start_brk (so the heap never grows a mapping that lies under it)."""
    prev = mm.tree.prev_before(oldbrk)
    if prev is None or prev.vm_end <= mm.start_brk:
        return None
    return prev


def brk_flags(mm: AddressSpace) -> int:
    """VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT | def_flags: a heap is executable only under
    READ_IMPLIES_EXEC (VM_DATA_FLAGS_TSK_EXEC)."""
    flags = VM_DATA_DEFAULT_FLAGS | VM.ACCOUNT | mm.def_flags
    if mm.read_implies_exec:
        flags |= VM.EXEC
    return flags


def _expand_brk_vma(mm: AddressSpace, prev: Vma, addr: int, end: int, flags: int) -> bool:
    """The just_expand merge of do_brk_flags(): stretch prev over [addr, end) if it is
    compatible. Returns whether it did; raises ENOMEM if the merge ran out of memory."""
    vmg = VmaMergeStruct(mm, addr, end, addr >> PAGE_SHIFT, flags, None, prev=prev)
    vmg.just_expand = True
    if vma_merge_new_range(vmg) is not None:
        return True
    if vmg.state is MergeState.ERROR_NOMEM:
        raise oserror(errno.ENOMEM, "brk: merge failed")
    return False


def _new_brk_vma(mm: AddressSpace, addr: int, end: int, flags: int) -> None:
    """vm_area_alloc() and vma_iter_store_gfp() in do_brk_flags(): an anonymous VMA whose
    pgoff is its page number, as for any private anonymous mapping."""
    if mm.injector.armed:
        maybe_inject(mm, "vma_alloc")
    vma = Vma(mm, mm.next_vma_id(), addr, end, addr >> PAGE_SHIFT, flags)
    if mm.injector.armed:
        maybe_inject(mm, "vma_prealloc")
    mm.tree.insert(vma)
    mm.map_count += 1
    if mm.tracer.active:
        mm.tracer.emit(VmaCreated(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, flags))


def do_brk_flags(mm: AddressSpace, prev: Vma | None, addr: int, length: int) -> None:
    """do_brk_flags(): limits, commit charge, then expand ``prev`` or add a VMA. The heap
    pages count as data whatever the flags say."""
    flags = ksm_vma_flags(mm, None, brk_flags(mm))
    npages = length >> PAGE_SHIFT
    if not may_expand_vm(mm, flags, npages):
        raise oserror(errno.ENOMEM, "brk: over RLIMIT_AS or RLIMIT_DATA")
    if mm.map_count > mm.max_map_count:
        raise oserror(errno.ENOMEM, "brk: map_count over max_map_count")
    security_vm_enough_memory(mm, npages)
    try:
        end = addr + length
        if prev is None or prev.vm_end != addr or not _expand_brk_vma(mm, prev, addr, end, flags):
            _new_brk_vma(mm, addr, end, flags)
    except OSError:
        vm_unacct_memory(mm, npages)
        raise
    mm.total_vm += npages
    mm.data_vm += npages
    if flags & VM.LOCKED:
        mm.locked_vm += npages


def _shrink(mm: AddressSpace, brk: int, newbrk: int, oldbrk: int) -> None:
    """The shrinking branch of brk(): the range being given up must start inside a VMA
    below the old break; everything mapped in [newbrk, oldbrk) is unmapped, heap or not."""
    vma = mm.tree.find_intersection(newbrk, oldbrk)
    if vma is None:
        raise oserror(errno.ENOMEM, "brk: nothing mapped between the new and the old break")
    origbrk = mm.current_brk
    mm.current_brk = brk
    try:
        do_vmi_align_munmap(mm, vma, newbrk, oldbrk)
    except OSError:
        mm.current_brk = origbrk
        raise


def _grow(mm: AddressSpace, brk: int, newbrk: int, oldbrk: int) -> None:
    """The growing branch of brk(): a page of room above the new break (and the guard gap
    below a stack) must stay free, then do_brk_flags() maps [oldbrk, newbrk)."""
    length = (newbrk - oldbrk) & U64
    check_brk_limits(mm, oldbrk, length)
    nxt = mm.tree.find_intersection(oldbrk, newbrk + PAGE_SIZE + mm.stack_guard_gap)
    if nxt is not None and newbrk + PAGE_SIZE > vm_start_gap(mm, nxt):
        raise oserror(errno.ENOMEM, "brk: the heap would run into the next mapping")
    do_brk_flags(mm, brk_vma_before(mm, oldbrk), oldbrk, length)
    mm.current_brk = brk
    if mm.def_flags & VM.LOCKED:

        mm_populate(mm, oldbrk, length, ignore_errors=True)


def sys_brk(mm: AddressSpace, brk: int) -> int:
    """SYSCALL_DEFINE1(brk): the new break, or the unchanged old one if the request is below
    start_brk, over RLIMIT_DATA, or cannot be mapped or unmapped."""
    brk &= U64
    origbrk = mm.current_brk
    if brk < mm.start_brk or check_data_rlimit(mm, brk):
        return origbrk
    newbrk = page_align(brk)
    oldbrk = page_align(origbrk)
    if newbrk == oldbrk:
        mm.current_brk = brk
        return brk
    try:
        if brk <= origbrk:
            _shrink(mm, brk, newbrk, oldbrk)
        else:
            _grow(mm, brk, newbrk, oldbrk)
    except OSError:
        return origbrk
    return brk
