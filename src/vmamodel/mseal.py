"""mseal(2): do_mseal, range_contains_unmapped and mseal_apply (mm/mseal.c), and the rule the
other syscalls share (vma_is_sealed, mm/vma.h).

Sealing sets VM_SEALED on every VMA of the range, splitting and merging exactly as any other
flag change does (vma_modify_flags). The flag is never cleared. The refusals live where the
kernel puts them: munmap and MAP_FIXED mmap in vms_gather_munmap_vmas (munmap.py), mprotect
in mprotect_fixup (mprotect.py), mremap in check_prep_vma (mremap.py) and the discarding
madvise advices in can_madvise_modify (madvise.py, via :func:`can_madvise_modify`).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.constants import (
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_DONTNEED_LOCKED,
    MADV_FREE,
    MADV_GUARD_INSTALL,
    MADV_REMOVE,
    MADV_WIPEONFORK,
    PAGE_MASK,
    ULONG_MAX,
    VM_SEALED,
    VM_WRITE,
    page_align,
)
from vmamodel.events import VmaChanged
from vmamodel.hooks import oserror
from vmamodel.merge import vma_modify_flags

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma


#: is_discard() (mm/madvise.c): the advices that throw away the contents of a range.
DISCARD_ADVICES = frozenset({
    MADV_FREE,
    MADV_DONTNEED,
    MADV_DONTNEED_LOCKED,
    MADV_REMOVE,
    MADV_DONTFORK,
    MADV_WIPEONFORK,
    MADV_GUARD_INSTALL,
})


def vma_is_sealed(vma: Vma) -> bool:
    """vma_is_sealed() (mm/vma.h, 64-bit): VM_SEALED is set."""
    return bool(vma.vm_flags & VM_SEALED)


def can_madvise_modify(mm: AddressSpace, vma: Vma, behavior: int) -> bool:
    """can_madvise_modify() (mm/madvise.c): a sealed VMA refuses only a discarding advice,
    and only on anonymous memory the caller could not write anyway (no VM_WRITE, or its
    protection key denies writes)."""
    if not vma_is_sealed(vma) or behavior not in DISCARD_ADVICES:
        return True
    if not vma.is_anonymous():
        return True
    return bool(vma.vm_flags & VM_WRITE) and not mm.pkey_denies_access(vma.pkey, write=True)


def range_contains_unmapped(mm: AddressSpace, start: int, end: int) -> bool:
    """range_contains_unmapped() (mm/mseal.c): a hole anywhere in [start, end)."""
    prev_end = start
    for vma in mm.tree.range(start, end):
        if vma.vm_start > prev_end:
            return True
        prev_end = vma.vm_end
    return prev_end < end


def mseal_apply(mm: AddressSpace, start: int, end: int) -> None:
    """mseal_apply() (mm/mseal.c): seal each VMA of a range known to have no holes.

    A failed split (ENOMEM at max_map_count) stops the walk; the VMAs sealed before it stay
    sealed, as in the kernel.
    """
    first = mm.tree.find(start)
    assert first is not None
    prev = first if start > first.vm_start else mm.tree.prev_of(first)
    vma: Vma | None = first
    while vma is not None and vma.vm_start < end:
        if not vma_is_sealed(vma):
            vma, newflags = vma_modify_flags(
                mm, prev, vma, max(vma.vm_start, start), min(vma.vm_end, end),
                vma.vm_flags | VM_SEALED,
            )
            vma.vm_flags = newflags
            if mm.tracer.active:
                mm.tracer.emit(
                    VmaChanged(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, newflags, "mseal")
                )
        prev = vma
        vma = mm.tree.next_of(vma)


def do_mseal(mm: AddressSpace, start: int, length: int, flags: int) -> None:
    """do_mseal() (mm/mseal.c): argument checks (EINVAL), then ENOMEM if the range has a
    hole (nothing sealed), then seal. Sealing sealed memory again is a no-op."""
    if flags:
        raise oserror(errno.EINVAL, "mseal: flags must be 0")
    if start & ~PAGE_MASK:
        raise oserror(errno.EINVAL, "mseal: unaligned address")
    aligned = page_align(length)
    if length and not aligned:
        raise oserror(errno.EINVAL, "mseal: length rounds up to zero")
    end = start + aligned
    if end > ULONG_MAX:
        raise oserror(errno.EINVAL, "mseal: range wraps")
    if end == start:
        return
    if range_contains_unmapped(mm, start, end):
        raise oserror(errno.ENOMEM, "mseal: the range has unmapped pages")
    mseal_apply(mm, start, end)
