"""madvise(2): do_madvise and the per-VMA behaviours of mm/madvise.c, with the parts of
mm/gup.c (faultin_page_range, check_vma_flags), mm/ksm.c (ksm_madvise) and
mm/khugepaged.c (hugepage_madvise, madvise_collapse) that decide what a call returns.

Three kinds of advice:

* flag advices (NORMAL ... NOHUGEPAGE) change vm_flags on the range, splitting and merging
  through :func:`vma_modify_flags`; running out of memory there is reported as EAGAIN;
* page advices (DONTNEED, FREE, REMOVE, COLD, PAGEOUT, WILLNEED, the guard markers) leave
  the VMAs alone (but for VM_MAYBE_GUARD) and act on ``mm.pages``;
* MADV_POPULATE_READ/WRITE fault the range in page by page, like a user access would.

The walk applies the advice to every mapped part of the range; a hole makes the call fail
with ENOMEM after the whole range was handled, while the first per-VMA error stops the walk
and is returned at once (the VMAs before it keep their change).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

from vmamodel.constants import (
    MADV_COLD,
    MADV_COLLAPSE,
    MADV_DODUMP,
    MADV_DOFORK,
    MADV_DONTDUMP,
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_DONTNEED_LOCKED,
    MADV_FREE,
    MADV_GUARD_INSTALL,
    MADV_GUARD_REMOVE,
    MADV_HUGEPAGE,
    MADV_KEEPONFORK,
    MADV_MERGEABLE,
    MADV_NOHUGEPAGE,
    MADV_NORMAL,
    MADV_PAGEOUT,
    MADV_POPULATE_READ,
    MADV_POPULATE_WRITE,
    MADV_RANDOM,
    MADV_REMOVE,
    MADV_SEQUENTIAL,
    MADV_UNMERGEABLE,
    MADV_WILLNEED,
    MADV_WIPEONFORK,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_SIZE,
    ULONG_MAX,
    VM_DONTCOPY,
    VM_DONTDUMP,
    VM_DROPPABLE,
    VM_HUGEPAGE,
    VM_HUGETLB,
    VM_IO,
    VM_LOCKED,
    VM_MAYBE_GUARD,
    VM_MIXEDMAP,
    VM_NOHUGEPAGE,
    VM_PFNMAP,
    VM_RAND_READ,
    VM_READ,
    VM_SEALED,
    VM_SEQ_READ,
    VM_SHADOW_STACK,
    VM_SHARED,
    VM_SPECIAL,
    VM_WIPEONFORK,
    VM_WRITE,
    page_align,
    pfn_up,
)
from vmamodel.events import VmaChanged
from vmamodel.fault import anon_vma_prepare, handle_mm_fault
from vmamodel.hooks import oserror
from vmamodel.hugetlb import vma_hpagesize
from vmamodel.ksm import ksm_madvise
from vmamodel.merge import vma_modify_flags
from vmamodel.mseal import can_madvise_modify

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.mm_types import MmStruct
    from vmamodel.vma import Vma


#: madvise_behavior_valid() on the host's configuration: KSM and THP built in,
#: CONFIG_MEMORY_FAILURE off (so MADV_HWPOISON and MADV_SOFT_OFFLINE are unknown).
_ALWAYS_VALID: Final = frozenset({
    MADV_DOFORK, MADV_DONTFORK, MADV_NORMAL, MADV_SEQUENTIAL, MADV_RANDOM, MADV_REMOVE,
    MADV_WILLNEED, MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE, MADV_COLD, MADV_PAGEOUT,
    MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_DONTDUMP,
    MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_GUARD_INSTALL, MADV_GUARD_REMOVE,
})
_THP_ADVICES: Final = frozenset({MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE})

#: VM_NO_KHUGEPAGED: never collapsed into huge pages.
_NO_KHUGEPAGED: Final = VM_SPECIAL | VM_HUGETLB


def c_int(value: int) -> int:
    """A syscall's ``int`` argument: the low 32 bits, signed."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def madvise_behavior_valid(mm: MmStruct, behavior: int) -> bool:
    """madvise_behavior_valid(): the advices this kernel configuration knows."""
    return behavior in _ALWAYS_VALID or (mm.thp_enabled and behavior in _THP_ADVICES)


def check_input_range(start: int, len_in: int) -> int:
    """check_input_range(): aligned start, a length that does not round up to zero from a
    huge value, a range that does not wrap; all EINVAL. Returns the aligned length."""
    if start & ~PAGE_MASK:
        raise oserror(errno.EINVAL, "madvise: unaligned address")
    length = page_align(len_in)
    if len_in and not length:
        raise oserror(errno.EINVAL, "madvise: length rounds up to zero")
    if start + length > ULONG_MAX:
        raise oserror(errno.EINVAL, "madvise: range wraps")
    return length


def do_madvise(mm: MmStruct, start: int, len_in: int, behavior: int) -> None:
    """do_madvise(): validate (EINVAL; an unknown advice fails even with length 0), do
    nothing for an empty range, then populate or walk the VMAs."""
    start &= ULONG_MAX
    len_in &= ULONG_MAX
    if not 0 <= behavior <= 0x7FFFFFFF:  # a non-negative int is its own c_int()
        behavior = c_int(behavior)
    # the always-valid advices need no call of madvise_behavior_valid()
    if behavior not in _ALWAYS_VALID and not madvise_behavior_valid(mm, behavior):
        raise oserror(errno.EINVAL, f"madvise: unknown advice {behavior}")
    end = start + check_input_range(start, len_in)
    if end == start:
        return
    if behavior in (MADV_POPULATE_READ, MADV_POPULATE_WRITE):
        madvise_populate(mm, start, end, behavior == MADV_POPULATE_WRITE)
    else:
        madvise_walk_vmas(mm, start, end, None, behavior)


# -- the walk ------------------------------------------------------------------------------

#: What the walk does to one VMA part: (prev, vma, start, end) -> the VMA now covering it.
VmaVisitor = Callable[["Vma | None", "Vma", int, int], "Vma"]


def madvise_walk_vmas(
    mm: MmStruct, start: int, last_end: int, visit: VmaVisitor | None, behavior: int = 0
) -> None:
    """madvise_walk_vmas(): apply ``visit`` (an anonymous name), or with None the advice
    ``behavior`` (madvise_vma_behavior(), called as the kernel's walk calls it: no closure
    per call), to each VMA part of [start, last_end) in turn. A hole is remembered and
    reported as ENOMEM at the end; a per-VMA error stops the walk."""
    vma, prev = mm.tree.find_prev(start)
    if vma is not None and start > vma.vm_start:
        prev = vma
    unmapped = False
    while True:
        if vma is None:
            raise oserror(errno.ENOMEM, "madvise: nothing mapped at the end of the range")
        if start < vma.vm_start:
            unmapped = True
            start = vma.vm_start
            if start >= last_end:
                break
        end = min(vma.vm_end, last_end)
        if visit is None:
            vma = madvise_vma_behavior(mm, behavior, prev, vma, start, end)
        else:
            vma = visit(prev, vma, start, end)
        prev = vma
        end = max(end, vma.vm_end)
        if end >= last_end:
            break
        vma = mm.tree.find(vma.vm_end)
        start = end
    if unmapped:
        raise oserror(errno.ENOMEM, "madvise: the range has unmapped pages")


def madvise_vma_behavior(
    mm: MmStruct, behavior: int, prev: Vma | None, vma: Vma, start: int, end: int
) -> Vma:
    """madvise_vma_behavior(): one VMA part. Returns the VMA that now covers it."""
    # can_madvise_modify() refuses nothing on an unsealed VMA: no call for those.
    if vma.vm_flags & VM_SEALED and not can_madvise_modify(cast("AddressSpace", mm), vma, behavior):
        raise oserror(errno.EPERM, "madvise: discarding sealed read-only anonymous memory")
    page_advice = _PAGE_ADVICES.get(behavior)
    if page_advice is not None:
        page_advice(mm, behavior, vma, start, end)
        return vma
    new_flags = madvise_new_flags(vma, behavior)
    try:
        return madvise_update_vma(mm, prev, vma, start, end, new_flags)
    except OSError as exc:
        if exc.errno == errno.ENOMEM:
            raise oserror(errno.EAGAIN, f"madvise: {exc.strerror}") from exc
        raise


# -- flag advices -------------------------------------------------------------------------


#: What each plain flag advice does to vm_flags: (bits cleared, bits set). HUGEPAGE and
#: NOHUGEPAGE are hugepage_madvise() (mm/khugepaged.c): each clears the other.
_FLAG_CHANGES: Final = {
    MADV_NORMAL: (VM_RAND_READ | VM_SEQ_READ, 0),
    MADV_SEQUENTIAL: (VM_RAND_READ, VM_SEQ_READ),
    MADV_RANDOM: (VM_SEQ_READ, VM_RAND_READ),
    MADV_DONTFORK: (0, VM_DONTCOPY),
    MADV_DOFORK: (VM_DONTCOPY, 0),
    MADV_WIPEONFORK: (0, VM_WIPEONFORK),
    MADV_KEEPONFORK: (VM_WIPEONFORK, 0),
    MADV_DONTDUMP: (0, VM_DONTDUMP),
    MADV_DODUMP: (VM_DONTDUMP, 0),
    MADV_HUGEPAGE: (VM_NOHUGEPAGE, VM_HUGEPAGE),
    MADV_NOHUGEPAGE: (VM_HUGEPAGE, VM_NOHUGEPAGE),
}


def madvise_flag_refusal(vma: Vma, behavior: int) -> str | None:
    """The refusals (EINVAL) of madvise_vma_behavior's flag advices, or None."""
    flags = vma.vm_flags
    if behavior == MADV_DOFORK and flags & VM_IO:
        return "MADV_DOFORK on VM_IO"
    if behavior == MADV_WIPEONFORK and (vma.vm_file is not None or flags & VM_SHARED):
        return "MADV_WIPEONFORK needs private anonymous memory"
    if behavior == MADV_KEEPONFORK and flags & VM_DROPPABLE:
        return "MADV_KEEPONFORK on droppable memory"
    if behavior == MADV_DODUMP and (
        (not flags & VM_HUGETLB and flags & VM_SPECIAL) or flags & VM_DROPPABLE
    ):
        return "MADV_DODUMP on special or droppable memory"
    return None


def madvise_new_flags(vma: Vma, behavior: int) -> int:
    """The vm_flags a flag advice asks for, or EINVAL where madvise_vma_behavior refuses."""
    reason = madvise_flag_refusal(vma, behavior)
    if reason is not None:
        raise oserror(errno.EINVAL, f"madvise: {reason}")
    if behavior in (MADV_MERGEABLE, MADV_UNMERGEABLE):
        return ksm_madvise(vma, behavior)
    clear, add = _FLAG_CHANGES[behavior]
    return (vma.vm_flags & ~clear) | add


def madvise_update_vma(
    mm: MmStruct, prev: Vma | None, vma: Vma, start: int, end: int, new_flags: int
) -> Vma:
    """madvise_update_vma(): nothing when the flags already match; otherwise merge or split
    so that one VMA covers [start, end), then store the flags (with any sticky ones)."""
    if new_flags == vma.vm_flags:
        return vma
    vma, new_flags = vma_modify_flags(mm, prev, vma, start, end, new_flags)
    vma.vm_flags = new_flags
    if mm.tracer.active:
        mm.tracer.emit(
            VmaChanged(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, new_flags, "madvise")
        )
    return vma


# -- page advices -------------------------------------------------------------------------


def madvise_dontneed_free(mm: MmStruct, behavior: int, vma: Vma, start: int, end: int) -> None:
    """madvise_dontneed_free(): refused (EINVAL) on VM_PFNMAP, on VM_LOCKED but for
    MADV_DONTNEED_LOCKED, and for MADV_FREE on anything but anonymous memory. DONTNEED
    drops the pages (guard markers stay); FREE only marks them lazily freeable."""
    flags = vma.vm_flags
    if flags & VM_HUGETLB:
        # madvise_dontneed_free_valid_vma(): a huge-page aligned start; the end is rounded
        # down to a huge page, so as not to free more than asked.
        if behavior == MADV_FREE:
            raise oserror(errno.EINVAL, "madvise: MADV_FREE on hugetlb")
        size = vma_hpagesize(vma)
        if start & (size - 1):
            raise oserror(errno.EINVAL, "madvise: hugetlb start off a huge page boundary")
        end &= ~(size - 1)
    else:
        forbidden = VM_PFNMAP if behavior == MADV_DONTNEED_LOCKED else VM_PFNMAP | VM_LOCKED
        if flags & forbidden:
            raise oserror(errno.EINVAL, "madvise: locked or PFN-mapped memory")
    if behavior == MADV_FREE:
        if not vma.is_anonymous():
            raise oserror(errno.EINVAL, "madvise: MADV_FREE on non-anonymous memory")
        return
    mm.pages.zap(start, end, keep_guards=True)


def madvise_remove(mm: MmStruct, behavior: int, vma: Vma, start: int, end: int) -> None:
    """madvise_remove(): punch a hole in the file behind a shared writable mapping. EINVAL
    on VM_LOCKED or without a file, EACCES unless shared and may-write."""
    if vma.vm_flags & VM_LOCKED:
        raise oserror(errno.EINVAL, "madvise: MADV_REMOVE on locked memory")
    if vma.vm_file is None:
        raise oserror(errno.EINVAL, "madvise: MADV_REMOVE without a file")
    if not vma.is_shared_maywrite():
        raise oserror(errno.EACCES, "madvise: MADV_REMOVE needs a shared writable mapping")
    mm.pages.zap(start, end, keep_guards=True)


def madvise_cold_pageout(mm: MmStruct, behavior: int, vma: Vma, start: int, end: int) -> None:
    """madvise_cold() / madvise_pageout(): only can_madv_lru_vma() refuses (EINVAL on
    locked, PFN-mapped or hugetlb memory); the pages stay mapped as far as the VMA layer
    can tell."""
    if vma.vm_flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB):
        raise oserror(errno.EINVAL, "madvise: MADV_COLD/PAGEOUT on locked or special memory")


def madvise_willneed(mm: MmStruct, behavior: int, vma: Vma, start: int, end: int) -> None:
    """madvise_willneed(): read-ahead or swap-in; never refused with swap configured."""


def is_valid_guard_vma(vma: Vma, allow_locked: bool) -> bool:
    """is_valid_guard_vma(): no guard markers in special or hugetlb VMAs, nor (to install)
    in locked ones."""
    disallowed = VM_SPECIAL | VM_HUGETLB
    if not allow_locked:
        disallowed |= VM_LOCKED
    return not vma.vm_flags & disallowed


def madvise_guard_install(mm: MmStruct, behavior: int, vma: Vma, start: int, end: int) -> None:
    """madvise_guard_install(): mark the whole VMA VM_MAYBE_GUARD (no split, no merge), give
    an anonymous VMA its anon_vma, zap whatever was faulted in the range and install a guard
    marker on every page of it."""

    if not is_valid_guard_vma(vma, allow_locked=False):
        raise oserror(errno.EINVAL, "madvise: guard markers in a special or locked VMA")
    vma.vm_flags |= VM_MAYBE_GUARD
    if mm.tracer.active:
        mm.tracer.emit(
            VmaChanged(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags, "madvise")
        )
    if vma.is_anonymous():
        anon_vma_prepare(mm, vma)
    pages = mm.pages
    pages.zap(start, end, keep_guards=True)
    pages.guards.update(range(start, end, PAGE_SIZE))


def madvise_guard_remove(mm: MmStruct, behavior: int, vma: Vma, start: int, end: int) -> None:
    """madvise_guard_remove(): clear the guard markers of the range; allowed on locked VMAs.
    VM_MAYBE_GUARD stays (it only says markers may exist)."""
    if not is_valid_guard_vma(vma, allow_locked=True):
        raise oserror(errno.EINVAL, "madvise: guard markers in a special VMA")
    mm.pages.guards.remove_range(start, end)


def madvise_collapse(mm: MmStruct, behavior: int, vma: Vma, start: int, end: int) -> None:
    """madvise_collapse() (mm/khugepaged.c): EINVAL unless the VMA may hold a PMD-sized huge
    page (thp_vma_allowable_order: no VM_NOHUGEPAGE, not special, an aligned 2 MiB block
    inside, file offset aligned alike); a range that contains no whole aligned block
    succeeds only if it starts on a block boundary. Each whole block is then collapsed
    (the VMA does not change). Of private anonymous memory a block collapses when it holds
    a written page (hpage_collapse_scan_pmd: an empty or zero-page-only table is
    SCAN_PMD_NULL / SCAN_PAGE_RO); any block that fails makes the call fail with the
    errno of the last failure, here EINVAL (madvise_collapse_errno). Allocation failures
    (ENOMEM) and busy pages (EAGAIN) are not modelled; shmem blocks collapse."""
    if not thp_collapse_allowed(vma):
        raise oserror(errno.EINVAL, "madvise: MADV_COLLAPSE on a VMA without room for a THP")
    hstart = (start + PMD_SIZE - 1) & ~(PMD_SIZE - 1)
    hend = end & ~(PMD_SIZE - 1)
    if hstart > hend:
        raise oserror(errno.EINVAL, "madvise: MADV_COLLAPSE range holds no huge page")
    if not vma.is_anonymous():
        return
    anon = mm.pages.anon
    for block in range(hstart, hend, PMD_SIZE):
        pages = range(block, block + PMD_SIZE, PAGE_SIZE)
        if not anon or not any(page in anon for page in pages):
            raise oserror(errno.EINVAL, f"MADV_COLLAPSE: nothing to collapse at {block:#x}")


def thp_collapse_allowed(vma: Vma) -> bool:
    """thp_vma_allowable_order(TVA_FORCED_COLLAPSE, PMD_ORDER) for the cases the model has."""
    if vma.vm_flags & (VM_NOHUGEPAGE | _NO_KHUGEPAGED):
        return False
    haddr = (vma.vm_end - PMD_SIZE) & ~(PMD_SIZE - 1)
    if haddr < vma.vm_start:
        return False
    if vma.is_anonymous():
        return True
    # Only shmem (memfd, shared anonymous) page cache is collapsible on the host.
    if vma.vm_file is None or vma.vm_file.kind not in ("memfd", "shmem_zero"):
        return False
    pages_per_pmd = PMD_SIZE >> PAGE_SHIFT
    return ((vma.vm_start >> PAGE_SHIFT) - vma.vm_pgoff) % pages_per_pmd == 0


_PAGE_ADVICES: Final = {
    MADV_DONTNEED: madvise_dontneed_free,
    MADV_DONTNEED_LOCKED: madvise_dontneed_free,
    MADV_FREE: madvise_dontneed_free,
    MADV_REMOVE: madvise_remove,
    MADV_COLD: madvise_cold_pageout,
    MADV_PAGEOUT: madvise_cold_pageout,
    MADV_WILLNEED: madvise_willneed,
    MADV_GUARD_INSTALL: madvise_guard_install,
    MADV_GUARD_REMOVE: madvise_guard_remove,
    MADV_COLLAPSE: madvise_collapse,
}


# -- MADV_POPULATE_(READ|WRITE) -----------------------------------------------------------


def populate_vma_refused(mm: MmStruct, vma: Vma, write: bool) -> bool:
    """check_vma_flags() for FOLL_MADV_POPULATE without FOLL_FORCE: PFN and I/O mappings,
    writes without VM_WRITE (or to a shadow stack), reads without VM_READ, and accesses
    the VMA's protection key denies."""
    flags = vma.vm_flags
    if flags & (VM_IO | VM_PFNMAP):
        return True
    if write:
        if not flags & VM_WRITE or flags & VM_SHADOW_STACK:
            return True
    elif not flags & VM_READ:
        return True
    return cast("AddressSpace", mm).pkey_denies_access(vma.pkey, write)


def first_unfaultable(mm: MmStruct, vma: Vma, start: int, end: int) -> int:
    """The first page of [start, end) whose fault fails (a guard marker: SIGSEGV; a file
    page past the end of the file: SIGBUS), or ``end``."""
    fail = end
    guard = mm.pages.guards.first_in(start, end)
    if guard is not None:
        fail = guard
    if vma.vm_ops is not None and vma.vm_file is not None and not vma.vm_flags & (
        VM_PFNMAP | VM_MIXEDMAP | VM_IO
    ):
        eof_pages = pfn_up(vma.vm_file.size)
        eof = vma.vm_start + ((eof_pages - vma.vm_pgoff) << PAGE_SHIFT)
        fail = min(fail, max(eof, start))
    return fail


def faultin_vma_range(mm: MmStruct, vma: Vma, start: int, end: int, write: bool) -> None:
    """__get_user_pages() over one VMA: fault each page in order until one fails (EFAULT),
    keeping the pages faulted before it. The first fault decides the VMA-level effect (a
    write fault on private memory gives the VMA its anon_vma)."""

    fail = first_unfaultable(mm, vma, start, end)
    if fail > start:
        handle_mm_fault(mm, vma, start, write)
        mm.pages.present.update(range(start, fail, PAGE_SIZE))
        if write and not vma.vm_flags & (VM_SHARED | VM_PFNMAP | VM_MIXEDMAP):
            mm.pages.anon.update(range(start, fail, PAGE_SIZE))
    if fail < end:
        raise oserror(errno.EFAULT, f"madvise: populate fault failed at {fail:#x}")


def madvise_populate(mm: MmStruct, start: int, end: int, write: bool) -> None:
    """madvise_populate() / faultin_page_range(): walk [start, end) page by page. No VMA at
    an address: ENOMEM; a VMA that refuses the access (check_vma_flags): EINVAL; a failing
    fault (guard marker, past EOF): EFAULT. What was populated before the error stays."""
    addr = start
    while addr < end:
        vma = mm.tree.lookup(addr)
        if vma is None:
            raise oserror(errno.ENOMEM, f"madvise: populate found no VMA at {addr:#x}")
        if populate_vma_refused(mm, vma, write):
            raise oserror(errno.EINVAL, "madvise: populate of an incompatible VMA")
        stop = min(end, vma.vm_end)
        faultin_vma_range(mm, vma, addr, stop, write)
        addr = stop
