"""mremap(2) as Linux 6.18 runs it (mm/mremap.c, with copy_vma and vma_merge_extend of
mm/vma.c): argument checks, shrink, growth in place, moves (one VMA, or several with
MREMAP_FIXED and an unchanged length) and MREMAP_DONTUNMAP.

Partial effects the kernel keeps on failure, and so does the model:

- MREMAP_FIXED unmaps the target range before anything else can fail (a later EFAULT, EPERM
  or ENOMEM leaves the hole);
- a shrink combined with a move unmaps the tail before the move can fail;
- a move of several VMAs stops at the first VMA that fails; the VMAs before it stay moved;
- a ``vm_ops->mremap`` veto (or a failed page table move) moves the pages back and unmaps
  the new range instead, so a MREMAP_FIXED target stays empty;
- the source unmap after a move only fails by fault injection; both copies then stay mapped
  and the source keeps VM_ACCOUNT cleared, as in unmap_source_vma().

Not modelled: hugetlb (MAP_HUGETLB cannot be mapped in the model), userfaultfd events and
KSM unmerging of the moved range.
"""

from __future__ import annotations

import enum
import errno
from typing import TYPE_CHECKING, Final, cast

from vmamodel.accounting import (
    may_expand_vm,
    security_vm_enough_memory,
    vm_stat_account,
    vm_unacct_memory,
)
from vmamodel.constants import (
    MAP_FIXED,
    MAP_SHARED,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE_MASK,
    PAGE_SHIFT,
    ULONG_MAX,
    VM_ACCOUNT,
    VM_DONTEXPAND,
    VM_HUGETLB,
    VM_LOCKED,
    VM_LOCKED_MASK,
    VM_MAYSHARE,
    VM_PFNMAP,
    VM_SEALED,
    VM_SHARED,
    VM_UFFD_FLAGS,
    page_align,
)
from vmamodel.events import VmaChanged, VmaCreated, WarnOn
from vmamodel.hooks import (
    call_hook,
    call_may_split,
    maybe_inject,
    ops_owner,
    oserror,
    vma_close,
    vma_open,
)
from vmamodel.hugetlb import vma_hpagesize
from vmamodel.merge import VmaMergeStruct, vma_merge_new_range
from vmamodel.munmap import do_munmap
from vmamodel.populate import mm_populate
from vmamodel.unmapped_area import get_unmapped_area, thp_get_unmapped_area
from vmamodel.userfaultfd import userfaultfd_reset_ctx
from vmamodel.vma import vma_dup

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.mm_types import MmStruct
    from vmamodel.vma import Vma

MREMAP_VALID: Final = MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP
#: vrm_implies_new_addr(): MREMAP_FIXED or MREMAP_DONTUNMAP always move
_IMPLIES_NEW_ADDR: Final = MREMAP_FIXED | MREMAP_DONTUNMAP


class MremapType(enum.Enum):
    """enum mremap_type."""

    INVALID = 0
    NO_RESIZE = 1
    SHRINK = 2
    EXPAND = 3


# The members as module constants: reading an Enum member through its class is a
# descriptor call (about 0.1 us in CPython 3.11), and the path of every call reads them.
_INVALID: Final = MremapType.INVALID
_NO_RESIZE: Final = MremapType.NO_RESIZE
_SHRINK: Final = MremapType.SHRINK
_EXPAND: Final = MremapType.EXPAND


class VmaRemapStruct:
    """struct vma_remap_struct: the request, rewritten as the operation goes on (a move of
    several VMAs reuses it for each one; a failed move swaps in the new range)."""

    __slots__ = (
        "addr",
        "charged",
        "delta",
        "flags",
        "new_addr",
        "new_len",
        "old_len",
        "populate_expand",
        "remap_type",
        "vma",
    )

    def __init__(self, addr: int, old_len: int, new_len: int, flags: int, new_addr: int) -> None:
        self.addr = addr
        self.old_len = old_len
        self.new_len = new_len
        self.flags = flags
        self.new_addr = new_addr
        self.vma: Vma | None = None
        self.delta = 0
        self.populate_expand = False
        self.remap_type = _INVALID
        self.charged = 0

    def overlaps(self) -> bool:
        """vrm_overlaps(): source and target ranges intersect (unsigned arithmetic)."""
        end_old = (self.addr + self.old_len) & ULONG_MAX
        end_new = (self.new_addr + self.new_len) & ULONG_MAX
        return end_old > self.new_addr and end_new > self.addr

    def set_delta(self) -> None:
        """vrm_set_delta() and vrm_remap_type()."""
        old_len, new_len = self.old_len, self.new_len
        if old_len == new_len:
            self.delta = 0
            self.remap_type = _NO_RESIZE
        elif old_len > new_len:
            self.delta = old_len - new_len
            self.remap_type = _SHRINK
        else:
            self.delta = new_len - old_len
            self.remap_type = _EXPAND

    def source(self) -> Vma:
        vma = self.vma
        assert vma is not None
        return vma


# -- entry point ---------------------------------------------------------------------------


def do_mremap(
    mm: MmStruct, old_addr: int, old_len: int, new_len: int, flags: int, new_addr: int
) -> int:
    """SYSCALL mremap → do_mremap(): align the lengths, check the arguments, then move
    several VMAs (MREMAP_FIXED, same length), or resize/move the VMA at ``old_addr``.
    An expanded VM_LOCKED mapping is populated after success."""
    vrm = VmaRemapStruct(
        old_addr & ULONG_MAX,
        page_align(old_len & ULONG_MAX),
        page_align(new_len & ULONG_MAX),
        flags & ULONG_MAX,
        new_addr & ULONG_MAX,
    )
    check_mremap_params(mm, vrm)
    flags = vrm.flags
    # vrm_move_only(): MREMAP_FIXED with an unchanged length
    if flags & MREMAP_FIXED and vrm.old_len == vrm.new_len:
        result = remap_move(mm, vrm)
    else:
        vrm.vma = mm.tree.lookup(vrm.addr)
        check_prep_vma(mm, vrm)
        result = mremap_to(mm, vrm) if flags & _IMPLIES_NEW_ADDR else mremap_at(mm, vrm)
    if vrm.populate_expand:

        mm_populate(mm, vrm.new_addr + vrm.old_len, vrm.delta, ignore_errors=True)
    return result


def check_mremap_params(mm: MmStruct, vrm: VmaRemapStruct) -> None:
    """check_mremap_params(): the checks made before any VMA is looked at."""
    flags, new_len = vrm.flags, vrm.new_len
    if flags & ~MREMAP_VALID:
        raise oserror(errno.EINVAL, "mremap: unknown flags")
    if vrm.addr & ~PAGE_MASK:
        raise oserror(errno.EINVAL, "mremap: unaligned old address")
    if not new_len:
        raise oserror(errno.EINVAL, "mremap: new length 0")
    if new_len > mm.task_size:
        raise oserror(errno.EINVAL, "mremap: new length larger than TASK_SIZE")
    if not flags & _IMPLIES_NEW_ADDR:
        return
    if vrm.new_addr > mm.task_size - vrm.new_len:
        raise oserror(errno.EINVAL, "mremap: new range past TASK_SIZE")
    if vrm.new_addr & ~PAGE_MASK:
        raise oserror(errno.EINVAL, "mremap: unaligned new address")
    if not vrm.flags & MREMAP_MAYMOVE:
        raise oserror(errno.EINVAL, "mremap: MREMAP_FIXED/MREMAP_DONTUNMAP without MAYMOVE")
    if vrm.flags & MREMAP_DONTUNMAP and vrm.old_len != vrm.new_len:
        raise oserror(errno.EINVAL, "mremap: MREMAP_DONTUNMAP cannot resize")
    if vrm.overlaps():
        raise oserror(errno.EINVAL, "mremap: old and new ranges overlap")
    # Room for the worst case: both the target and the source split into three.
    if mm.map_count + 2 >= mm.max_map_count - 3:
        raise oserror(errno.ENOMEM, "mremap: too close to max_map_count")
    if mm.injector.armed:
        maybe_inject(mm, "max_map_count")


def align_hugetlb(vrm: VmaRemapStruct, vma: Vma) -> bool:
    """align_hugetlb(): both lengths rounded up to the huge page size; False (EINVAL) for an
    address off a huge page boundary or a growing request."""
    size = vma_hpagesize(vma)
    vrm.old_len = (vrm.old_len + size - 1) & ~(size - 1)
    vrm.new_len = (vrm.new_len + size - 1) & ~(size - 1)
    if vrm.addr & (size - 1) or vrm.new_addr & (size - 1):
        return False
    return vrm.new_len <= vrm.old_len


def check_prep_vma(mm: MmStruct, vrm: VmaRemapStruct) -> None:
    """check_prep_vma(): classify the request and check it against the VMA at ``addr``.
    A call that neither grows nor moves is not checked further (a shrink or a no-op may
    span several VMAs and holes)."""
    vma = vrm.vma
    if vma is None:
        raise oserror(errno.EFAULT, "mremap: no VMA at the old address")
    vm_flags = vma.vm_flags
    if vm_flags & VM_SEALED:
        raise oserror(errno.EPERM, "mremap: sealed VMA")
    if vm_flags & VM_HUGETLB and not align_hugetlb(vrm, vma):
        raise oserror(errno.EINVAL, "mremap: hugetlb addresses or growth")
    vrm.set_delta()
    implies_new_addr = vrm.flags & _IMPLIES_NEW_ADDR
    if not implies_new_addr:
        vrm.new_addr = vrm.addr
    remap_type = vrm.remap_type
    # vrm_will_map_new(): the call grows the mapping or moves it
    if remap_type is not _EXPAND and not implies_new_addr:
        return
    old_len, new_len = vrm.old_len, vrm.new_len
    if not old_len and not vm_flags & (VM_SHARED | VM_MAYSHARE):
        if mm.tracer.active:
            mm.tracer.emit(WarnOn("attempted to duplicate a private mapping with mremap"))
        raise oserror(errno.EINVAL, "mremap: old length 0 on a private mapping")
    if vrm.flags & MREMAP_DONTUNMAP and vm_flags & (VM_DONTEXPAND | VM_PFNMAP):
        raise oserror(errno.EINVAL, "mremap: MREMAP_DONTUNMAP of a VM_DONTEXPAND/PFNMAP VMA")
    if remap_type is _SHRINK:
        # The tail that a shrink unmaps may cross VMA boundaries; what moves may not.
        old_len = new_len
    if old_len > vma.vm_end - vrm.addr:
        raise oserror(errno.EFAULT, "mremap: old range crosses the end of the VMA")
    if new_len == old_len:
        return
    _check_growth(mm, vrm, vma)


def _check_growth(mm: MmStruct, vrm: VmaRemapStruct, vma: Vma) -> None:
    """The tail of check_prep_vma() for a growing mapping: offset overflow, VMAs that may
    not grow, RLIMIT_MEMLOCK and RLIMIT_AS/RLIMIT_DATA."""
    vm_flags = vma.vm_flags
    locked = vm_flags & VM_LOCKED
    if locked:
        vrm.populate_expand = True
    pgoff = vma.vm_pgoff + ((vrm.addr - vma.vm_start) >> PAGE_SHIFT)
    if (pgoff + (vrm.new_len >> PAGE_SHIFT)) & ULONG_MAX < pgoff:
        raise oserror(errno.EINVAL, "mremap: file offset overflows")
    if vm_flags & (VM_DONTEXPAND | VM_PFNMAP):
        raise oserror(errno.EFAULT, "mremap: VM_DONTEXPAND/VM_PFNMAP cannot grow")
    # mlock_future_ok() allows anything that is not VM_LOCKED: no call for those.
    if locked and not cast("AddressSpace", mm).mlock_future_ok(locked, vrm.delta):
        raise oserror(errno.EAGAIN, "mremap: over RLIMIT_MEMLOCK")
    if not may_expand_vm(mm, vm_flags, vrm.delta >> PAGE_SHIFT):
        raise oserror(errno.ENOMEM, "mremap: over RLIMIT_AS or RLIMIT_DATA")


# -- moving several VMAs --------------------------------------------------------------------


def vma_multi_allowed(vma: Vma) -> bool:
    """vma_multi_allowed(): no userfaultfd, and no placement of the file's own that could
    disobey MAP_FIXED (shmem's and thp_get_unmapped_area are known to obey it)."""
    if vma.vm_flags & VM_UFFD_FLAGS:
        return False
    file = vma.vm_file
    if file is None or file.f_op is None or file.f_op.get_unmapped_area is None:
        return True
    return file.shmem or file.f_op.get_unmapped_area is thp_get_unmapped_area


def remap_move(mm: MmStruct, vrm: VmaRemapStruct) -> int:
    """remap_move(): move every VMA of [addr, addr+old_len) to the same offset from
    new_addr (gaps between them are kept, and what lies in a gap at the target stays).
    The range must start inside a VMA; a failure leaves the VMAs moved so far moved."""
    start = vrm.addr
    end = (vrm.addr + vrm.old_len) & ULONG_MAX
    target = vrm.new_addr
    result: int | None = None
    last_end = 0
    cursor = start
    # The walk resumes after the end the last VMA had (the iterator is paused there), so a
    # copy that merged into a VMA of the range is not visited again.
    while cursor < end and (vma := mm.tree.find(cursor)) is not None and vma.vm_start < end:
        if result is None and start < vma.vm_start:
            raise oserror(errno.EFAULT, "mremap: the range starts in a hole")
        addr = max(vma.vm_start, start)
        length = min(end, vma.vm_end) - addr
        offset = vma.vm_start - last_end if result is not None else 0
        last_end = cursor = vma.vm_end
        vrm.vma, vrm.addr = vma, addr
        vrm.new_addr = target + offset
        vrm.old_len = vrm.new_len = length
        if not vma_multi_allowed(vma) and (result is not None or vma.vm_end < end):
            raise oserror(errno.EFAULT, "mremap: this VMA can only be moved alone")
        check_prep_vma(mm, vrm)
        moved = mremap_to(mm, vrm)
        if result is None:
            result = moved
        target = moved + vrm.new_len
    if result is None:
        raise oserror(errno.EFAULT, "mremap: nothing mapped at the old address")
    return result


# -- resizing in place ------------------------------------------------------------------------


def mremap_at(mm: MmStruct, vrm: VmaRemapStruct) -> int:
    """mremap_at(): no new address asked for: nothing to do, shrink, or grow."""
    remap_type = vrm.remap_type
    if remap_type is _NO_RESIZE:
        return vrm.addr
    if remap_type is _SHRINK:
        shrink_vma(mm, vrm, reload=False)
        return vrm.addr
    return expand_vma(mm, vrm)


def shrink_vma(mm: MmStruct, vrm: VmaRemapStruct, reload: bool) -> None:
    """shrink_vma(): unmap [addr+new_len, addr+old_len), whatever VMAs lie there; with
    ``reload`` (a move follows) the VMA at ``addr`` must still exist."""
    do_munmap(mm, (vrm.addr + vrm.new_len) & ULONG_MAX, vrm.delta)
    vrm.vma = None
    if reload:
        vrm.vma = mm.tree.lookup(vrm.addr)
        if vrm.vma is None:
            raise oserror(errno.EFAULT, "mremap: the VMA went away")


def expand_vma(mm: MmStruct, vrm: VmaRemapStruct) -> int:
    """expand_vma(): grow in place when the range ends at the VMA's end and the space
    after it is free; otherwise move (MREMAP_MAYMOVE) or fail with ENOMEM."""
    if vrm_can_expand_in_place(mm, vrm):
        expand_vma_in_place(mm, vrm)
        return vrm.addr
    if not vrm.flags & MREMAP_MAYMOVE:
        raise oserror(errno.ENOMEM, "mremap: cannot grow in place and may not move")
    vrm_set_new_addr(mm, vrm)
    return move_vma(mm, vrm)


def vma_expandable(mm: MmStruct, vma: Vma, delta: int) -> bool:
    """vma_expandable(): nothing in [vm_end, vm_end+delta), and the grown range is a valid
    MAP_FIXED placement."""
    end = vma.vm_end + delta
    if end > ULONG_MAX:
        return False
    if mm.tree.find_intersection(vma.vm_end, end) is not None:
        return False
    try:
        get_unmapped_area(mm, None, vma.vm_start, end - vma.vm_start, 0, MAP_FIXED)
    except OSError:
        return False
    return True


def vrm_can_expand_in_place(mm: MmStruct, vrm: VmaRemapStruct) -> bool:
    """vrm_can_expand_in_place()."""
    vma = vrm.vma
    assert vma is not None
    return vma.vm_end - vrm.addr == vrm.old_len and vma_expandable(mm, vma, vrm.delta)


def vma_merge_extend(mm: MmStruct, vma: Vma, delta: int) -> Vma | None:
    """vma_merge_extend() (mm/vma.c): a new-range merge of [vm_end, vm_end+delta) with the
    VMA itself as prev, which also takes in the next VMA when it becomes adjacent and is
    compatible. None when nothing merged (a VM_SPECIAL VMA, or an allocation failure)."""
    vmg = VmaMergeStruct.from_vma(mm, vma, vma, vma.vm_end, vma.vm_end + delta)
    vmg.next = mm.tree.next_from(vma.vm_end)
    vmg.middle = None
    return vma_merge_new_range(vmg)


def expand_vma_in_place(mm: MmStruct, vrm: VmaRemapStruct) -> None:
    """expand_vma_in_place(): charge, merge-extend, account."""
    vrm_calc_charge(mm, vrm)
    vma = vma_merge_extend(mm, vrm.source(), vrm.delta)
    if vma is None:
        vrm_uncharge(mm, vrm)
        raise oserror(errno.ENOMEM, "mremap: the VMA cannot be extended")
    vrm.vma = vma
    vrm_stat_account(mm, vrm, vrm.delta)
    if mm.tracer.active:
        mm.tracer.emit(
            VmaChanged(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags, "mremap")
        )


# -- moving one VMA -------------------------------------------------------------------------


def mremap_to(mm: MmStruct, vrm: VmaRemapStruct) -> int:
    """mremap_to(): MREMAP_FIXED unmaps the target first; a shrink is done before the
    move; MREMAP_DONTUNMAP needs RLIMIT_AS room for a second copy."""
    if vrm.flags & MREMAP_FIXED:
        do_munmap(mm, vrm.new_addr, vrm.new_len)
        vrm.vma = mm.tree.lookup(vrm.addr)
        if vrm.vma is None:
            raise oserror(errno.EFAULT, "mremap: the target unmap removed the source")
    if vrm.remap_type is _SHRINK:
        shrink_vma(mm, vrm, reload=True)
        vrm.old_len = vrm.new_len
    if vrm.flags & MREMAP_DONTUNMAP:
        if not may_expand_vm(mm, vrm.source().vm_flags, vrm.old_len >> PAGE_SHIFT):
            raise oserror(errno.ENOMEM, "mremap: MREMAP_DONTUNMAP over RLIMIT_AS")
    vrm_set_new_addr(mm, vrm)
    return move_vma(mm, vrm)


def vrm_set_new_addr(mm: MmStruct, vrm: VmaRemapStruct) -> None:
    """vrm_set_new_addr(): place the target like mmap would: MAP_FIXED for MREMAP_FIXED,
    new_addr as a hint for MREMAP_DONTUNMAP alone, anywhere otherwise."""
    vma = vrm.vma
    assert vma is not None
    flags = vrm.flags
    pgoff = vma.vm_pgoff + ((vrm.addr - vma.vm_start) >> PAGE_SHIFT)
    hint = vrm.new_addr if flags & _IMPLIES_NEW_ADDR else 0
    map_flags = MAP_FIXED if flags & MREMAP_FIXED else 0
    if vma.vm_flags & VM_MAYSHARE:
        map_flags |= MAP_SHARED
    vrm.new_addr = get_unmapped_area(mm, vma.vm_file, hint, vrm.new_len, pgoff, map_flags)


def vrm_calc_charge(mm: MmStruct, vrm: VmaRemapStruct) -> None:
    """vrm_calc_charge(): an accounted VMA is charged the growth, or the whole new length
    for MREMAP_DONTUNMAP (the old copy stays charged)."""
    vrm.charged = 0
    vma = vrm.vma
    assert vma is not None
    if not vma.vm_flags & VM_ACCOUNT:
        return
    pages = (vrm.new_len if vrm.flags & MREMAP_DONTUNMAP else vrm.delta) >> PAGE_SHIFT
    try:
        security_vm_enough_memory(mm, pages)
    except OSError as exc:
        raise oserror(errno.ENOMEM, "mremap: not enough memory to charge") from exc
    vrm.charged = pages


def vrm_uncharge(mm: MmStruct, vrm: VmaRemapStruct) -> None:
    """vrm_uncharge()."""
    if vrm.source().vm_flags & VM_ACCOUNT:
        vm_unacct_memory(mm, vrm.charged)
        vrm.charged = 0


def vrm_stat_account(mm: MmStruct, vrm: VmaRemapStruct, nbytes: int) -> None:
    """vrm_stat_account(): total/exec/stack/data and locked_vm grow by ``nbytes``."""
    vma = vrm.vma
    assert vma is not None
    vm_flags = vma.vm_flags
    pages = nbytes >> PAGE_SHIFT
    vm_stat_account(mm, vm_flags, pages)
    if vm_flags & VM_LOCKED:
        mm.locked_vm += pages


def prep_move_vma(mm: MmStruct, vrm: VmaRemapStruct) -> None:
    """prep_move_vma(): map_count headroom for a copy plus a split source, and ->may_split
    at each end of the source range that is not already a VMA boundary."""
    vma = vrm.vma
    assert vma is not None
    if mm.map_count >= mm.max_map_count - 3:
        raise oserror(errno.ENOMEM, "mremap: move too close to max_map_count")
    if mm.injector.armed:
        maybe_inject(mm, "max_map_count")
    if vma.vm_ops is None or vma.vm_ops.may_split is None:
        return
    if vma.vm_start != vrm.addr:
        call_may_split(mm, vma, vrm.addr)
    if vma.vm_end != vrm.addr + vrm.old_len:
        call_may_split(mm, vma, vrm.addr + vrm.old_len)


def move_vma(mm: MmStruct, vrm: VmaRemapStruct) -> int:
    """move_vma(): copy the VMA and its pages to new_addr, then unmap the source (or, for
    MREMAP_DONTUNMAP, leave it empty). When the copy exists but the move failed, the copy
    is what gets unmapped and the error is returned."""
    prep_move_vma(mm, vrm)
    vrm_calc_charge(mm, vrm)
    new_vma, err = copy_vma_and_data(mm, vrm)
    if new_vma is None:
        assert err is not None
        raise err
    vrm_stat_account(mm, vrm, vrm.new_len)
    if mm.uffd_ctxs:
        # mremap_userfaultfd_prep without EVENT_REMAP
        userfaultfd_reset_ctx(cast("AddressSpace", mm), new_vma)
    if err is None and vrm.flags & MREMAP_DONTUNMAP:
        dontunmap_complete(mm, vrm, new_vma)
    else:
        unmap_source_vma(mm, vrm)
    if err is not None:
        raise err
    return vrm.new_addr


def copy_vma_and_data(mm: MmStruct, vrm: VmaRemapStruct) -> tuple[Vma | None, OSError | None]:
    """copy_vma_and_data(): the new VMA (or the neighbour it merged into), then the page
    tables, then ``vm_ops->mremap``. On a failure after the copy the pages go back and the
    request is turned around so that the new range is the one unmapped."""
    vma = vrm.vma
    assert vma is not None
    pgoff = vma.vm_pgoff + ((vrm.addr - vma.vm_start) >> PAGE_SHIFT)
    copied = copy_vma(mm, vma, vrm.new_addr, vrm.new_len, pgoff)
    if copied is None:
        vrm_uncharge(mm, vrm)
        return None, oserror(errno.ENOMEM, "mremap: copy_vma failed")
    new_vma, vma = copied
    vrm.vma = vma
    moved = move_page_tables(mm, vrm.addr, vrm.new_addr, vrm.old_len)
    err: OSError | None = None
    if moved < vrm.old_len:
        err = oserror(errno.ENOMEM, "mremap: page tables could not be moved")
    else:
        try:
            call_mremap_hook(mm, vma, new_vma)
        except OSError as exc:
            err = exc
    if err is not None:
        mm.pages.move(vrm.new_addr, vrm.addr, moved)
        vrm.vma = new_vma
        vrm.old_len = vrm.new_len
        vrm.addr = vrm.new_addr
    return new_vma, err


def move_page_tables(mm: MmStruct, old_addr: int, new_addr: int, length: int) -> int:
    """move_page_tables(): pages and guard markers follow the move. Returns the bytes
    moved; the "move_page_tables" failure point makes it move none."""
    if not length:
        return 0
    if mm.injector.armed:
        try:
            maybe_inject(mm, "move_page_tables")
        except OSError:
            return 0
    mm.pages.move(old_addr, new_addr, length)
    return length


def call_mremap_hook(mm: MmStruct, vma: Vma, new_vma: Vma) -> None:
    """``vma->vm_ops->mremap(new_vma)``: the driver is told the mapping moved; an error
    undoes the move."""
    ops = vma.vm_ops
    if ops is None or ops.mremap is None:
        return
    mremap = ops.mremap
    error = call_hook(
        mm, "mremap", ops_owner(ops), new_vma.id, (), lambda: mremap(new_vma), "vm_mremap"
    )
    if error is not None:
        raise error


def copy_vma(
    mm: MmStruct, vma: Vma, addr: int, length: int, pgoff: int
) -> tuple[Vma, Vma] | None:
    """copy_vma() (mm/vma.c): merge [addr, addr+length) with its neighbours as a copy of
    ``vma`` (vma_merge_copied_range), or make a new VMA (->open runs on it). An unfaulted
    anonymous VMA takes the new address as its pgoff so that it can merge there.

    Returns (the VMA now covering the target, the source) - the source changes when the
    target merged into it - or None when no VMA could be made (ENOMEM)."""
    vma_start = vma.vm_start
    if vma.is_anonymous() and vma.anon_vma is None:
        pgoff = addr >> PAGE_SHIFT
    # find_vma_prev() then vma_iter_next_rewind(): the VMA found after addr, when it does
    # not overlap the target, is the next VMA; one search gives both.
    found, prev = mm.tree.find_prev(addr)
    if found is not None and found.vm_start < addr + length:
        return None
    vmg = VmaMergeStruct.from_vma(mm, prev, vma, addr, addr + length)
    vmg.pgoff = pgoff
    vmg.next = found
    vmg.copied_from, vmg.middle = vma, None
    merged = vma_merge_new_range(vmg)
    if merged is not None:
        if merged.vm_start <= vma_start < merged.vm_end:
            vma = merged
        return merged, vma
    new_vma = _copy_vma_new(mm, vma, addr, length, pgoff)
    return None if new_vma is None else (new_vma, vma)


def _copy_vma_new(mm: MmStruct, vma: Vma, addr: int, length: int, pgoff: int) -> Vma | None:
    """The no-merge half of copy_vma(): duplicate, open, link. A failure to link closes the
    copy again (->close after ->open)."""
    if mm.injector.armed:
        try:
            maybe_inject(mm, "copy_vma")
        except OSError:
            return None
    new_vma = vma_dup(mm, vma)
    new_vma.vm_start, new_vma.vm_end, new_vma.vm_pgoff = addr, addr + length, pgoff
    vma_open(mm, new_vma)
    if mm.injector.armed:
        try:
            maybe_inject(mm, "vma_prealloc")
        except OSError:
            vma_close(mm, new_vma)
            return None
    mm.tree.insert(new_vma)
    mm.map_count += 1
    if mm.tracer.active:
        mm.tracer.emit(
            VmaCreated(new_vma.id, addr, addr + length, pgoff, new_vma.vm_flags)
        )
    return new_vma


def unmap_source_vma(mm: MmStruct, vrm: VmaRemapStruct) -> None:
    """unmap_source_vma(): munmap [addr, addr+old_len) without un-charging what moved
    (VM_ACCOUNT is cleared for the unmap and set again on the pieces that remain). If the
    unmap fails the charge is taken again and VM_ACCOUNT stays cleared, as in the kernel."""
    vma = vrm.vma
    assert vma is not None
    addr, length = vrm.addr, vrm.old_len
    accountable = bool(vma.vm_flags & VM_ACCOUNT) and not vrm.flags & MREMAP_DONTUNMAP
    vm_start, vm_end = vma.vm_start, vma.vm_end
    if accountable:
        vma.vm_flags &= ~VM_ACCOUNT
    try:
        do_munmap(mm, addr, length)
    except OSError:
        mm.committed_pages += length >> PAGE_SHIFT
        return
    finally:
        vrm.vma = None
    if not accountable:
        return
    lower, upper = vm_start < addr, vm_end > addr + length
    if not (lower or upper):
        return
    # vma_prev() and vma_next() of the iterator left at the hole: the pieces either side.
    after, before = mm.tree.find_prev(addr)
    if lower:
        assert before is not None
        before.vm_flags |= VM_ACCOUNT
    if upper:
        assert after is not None
        after.vm_flags |= VM_ACCOUNT


def dontunmap_complete(mm: MmStruct, vrm: VmaRemapStruct, new_vma: Vma) -> None:
    """dontunmap_complete(): the old VMA stays, emptied; it loses VM_LOCKED/LOCKONFAULT
    (locked_vm is not lowered), keeps VM_ACCOUNT, and drops its anon_vma when the whole
    VMA was moved (so it merges like a never-faulted VMA afterwards)."""
    vma = vrm.source()
    start, end = vrm.addr, vrm.addr + vrm.old_len
    vma.vm_flags &= ~VM_LOCKED_MASK
    if new_vma is not vma and (start, end) == (vma.vm_start, vma.vm_end):
        vma.anon_vma = None
        vma.fork_child = False
    if mm.tracer.active:
        mm.tracer.emit(
            VmaChanged(
                vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags, "mremap dontunmap"
            )
        )
