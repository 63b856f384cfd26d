"""KSM at the VMA level (mm/ksm.c, kernel/sys.c): which VMAs carry VM_MERGEABLE (``mg``).

Two ways set the flag:

* ``madvise(MADV_MERGEABLE)`` on a range (:func:`ksm_madvise`); ``MADV_UNMERGEABLE`` clears
  it. Both change flags like any flag advice, so they split and merge VMAs.
* ``prctl(PR_SET_MEMORY_MERGE, 1)`` (:func:`ksm_enable_merge_any`): the mm gets
  MMF_VM_MERGE_ANY, every existing compatible VMA gets the flag in place (no split, no
  merge), and every new one gets it at creation (:func:`ksm_vma_flags`). For mmap the flag
  is set before the merge attempt when no driver's legacy ``.mmap`` can change the flags
  afterwards (:func:`can_set_ksm_flags_early`), otherwise only on the new VMA, which then
  does not merge with its (mergeable) neighbours. ``prctl(PR_SET_MEMORY_MERGE, 0)`` clears
  the flag from every VMA, also where MADV_MERGEABLE had set it (ksm_del_vmas).

MMF_VM_MERGE_ANY is ``AddressSpace.ksm_merge_any``; fork keeps it (MMF_INIT_MASK). KSM never
touches VMAs it cannot handle (:func:`ksm_compatible`): shared, special, hugetlb and
droppable ones; the advice then succeeds and changes nothing.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Final

from vmamodel.constants import (
    MADV_MERGEABLE,
    PR_SET_MEMORY_MERGE,
    VM_DROPPABLE,
    VM_HUGETLB,
    VM_MAYSHARE,
    VM_MERGEABLE,
    VM_SHARED,
    VM_SPECIAL,
)
from vmamodel.events import VmaChanged
from vmamodel.hooks import oserror

if TYPE_CHECKING:
    from vmamodel.file import File
    from vmamodel.mm import AddressSpace
    from vmamodel.mm_types import MmStruct
    from vmamodel.vma import Vma

#: The flags of VMAs KSM leaves alone (ksm_compatible).
KSM_INCOMPATIBLE: Final = VM_SHARED | VM_MAYSHARE | VM_SPECIAL | VM_HUGETLB | VM_DROPPABLE


def ksm_compatible(file: File | None, vm_flags: int) -> bool:
    """ksm_compatible(): private, not special, not hugetlb, not droppable (DAX files, which
    KSM also refuses, are not modelled)."""
    return not vm_flags & KSM_INCOMPATIBLE


def vma_ksm_compatible(vma: Vma) -> bool:
    """vma_ksm_compatible()."""
    return ksm_compatible(vma.vm_file, vma.vm_flags)


def __ksm_should_add_vma(file: File | None, vm_flags: int) -> bool:
    """__ksm_should_add_vma(): compatible and not mergeable yet."""
    return not vm_flags & VM_MERGEABLE and ksm_compatible(file, vm_flags)


def ksm_vma_flags(mm: MmStruct, file: File | None, vm_flags: int) -> int:
    """ksm_vma_flags(): the flags of a new VMA, with VM_MERGEABLE under MMF_VM_MERGE_ANY."""
    if mm.ksm_merge_any and __ksm_should_add_vma(file, vm_flags):
        return vm_flags | VM_MERGEABLE
    return vm_flags


def can_set_ksm_flags_early(file: File | None) -> bool:
    """can_set_ksm_flags_early() (mm/vma.c): anonymous memory, shmem and files with
    ``.mmap_prepare`` get VM_MERGEABLE before the merge attempt; a legacy ``.mmap`` could
    still change the flags, so its VMA gets it only when no merge happened."""
    if file is None or file.shmem:
        return True
    return file.f_op is not None and file.f_op.mmap_prepare is not None


def ksm_madvise(vma: Vma, behavior: int) -> int:
    """ksm_madvise(): the flags MADV_MERGEABLE / MADV_UNMERGEABLE ask for. MERGEABLE is
    silently ignored on VMAs KSM cannot handle (vma_ksm_compatible); UNMERGEABLE clears the
    flag (unmerging the KSM pages first, which the VMA layer does not see)."""
    flags = vma.vm_flags
    if behavior == MADV_MERGEABLE:
        if flags & VM_MERGEABLE or not vma_ksm_compatible(vma):
            return flags
        return flags | VM_MERGEABLE
    return flags & ~VM_MERGEABLE


def _set_flags(mm: AddressSpace, vma: Vma, flags: int) -> None:
    vma.vm_flags = flags
    if mm.tracer.active:
        mm.tracer.emit(VmaChanged(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, flags, "ksm"))


def ksm_add_vmas(mm: AddressSpace) -> None:
    """ksm_add_vmas() / __ksm_add_vma(): VM_MERGEABLE on every compatible VMA, in place."""
    for vma in mm.tree:
        if __ksm_should_add_vma(vma.vm_file, vma.vm_flags):
            _set_flags(mm, vma, vma.vm_flags | VM_MERGEABLE)


def ksm_del_vmas(mm: AddressSpace) -> None:
    """ksm_del_vmas() / __ksm_del_vma(): VM_MERGEABLE off every VMA, in place."""
    for vma in mm.tree:
        if vma.vm_flags & VM_MERGEABLE:
            _set_flags(mm, vma, vma.vm_flags & ~VM_MERGEABLE)


def ksm_enable_merge_any(mm: AddressSpace) -> None:
    """ksm_enable_merge_any(): nothing when already on; else MMF_VM_MERGE_ANY and
    ksm_add_vmas()."""
    if mm.ksm_merge_any:
        return
    mm.ksm_merge_any = True
    ksm_add_vmas(mm)


def ksm_disable_merge_any(mm: AddressSpace) -> None:
    """ksm_disable_merge_any(): nothing when off; else ksm_del_vmas() and clear the flag."""
    if not mm.ksm_merge_any:
        return
    ksm_del_vmas(mm)
    mm.ksm_merge_any = False


def prctl_memory_merge(
    mm: AddressSpace, option: int, arg2: int, arg3: int, arg4: int, arg5: int
) -> int:
    """The PR_SET_MEMORY_MERGE and PR_GET_MEMORY_MERGE cases of prctl() (kernel/sys.c):
    unused arguments must be zero (EINVAL); SET turns MMF_VM_MERGE_ANY on for any non-zero
    ``arg2`` and returns 0, GET returns 1 or 0."""
    if option == PR_SET_MEMORY_MERGE:
        if arg3 or arg4 or arg5:
            raise oserror(errno.EINVAL, "PR_SET_MEMORY_MERGE: arguments 3-5 must be 0")
        if arg2:
            ksm_enable_merge_any(mm)
        else:
            ksm_disable_merge_any(mm)
        return 0
    if arg2 or arg3 or arg4 or arg5:
        raise oserror(errno.EINVAL, "PR_GET_MEMORY_MERGE: arguments 2-5 must be 0")
    return int(mm.ksm_merge_any)
