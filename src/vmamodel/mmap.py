"""mmap(2): do_mmap (mm/mmap.c) and the mapping pipeline mmap_region / __mmap_region
(mm/vma.c), including the mmap_prepare hook, the merge attempt, the legacy .mmap hook and the
completion of mmap actions (mm/util.c) that ends in vm_ops->mapped.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Final, cast

from vmamodel.accounting import (
    OVERCOMMIT_NEVER,
    accountable_mapping,
    may_expand_vm,
    security_vm_enough_memory,
    vm_stat_account,
    vm_unacct_memory,
)
from vmamodel.compat import vfs_mmap
from vmamodel.constants import (
    LEGACY_MAP_MASK,
    MAP_ANONYMOUS,
    MAP_DROPPABLE,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_HUGETLB,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_SHARED_VALIDATE,
    MAP_SYNC,
    MAP_TYPE,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    ULONG_MAX,
    VM_ACCOUNT,
    VM_DONTDUMP,
    VM_DROPPABLE,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_HUGETLB,
    VM_LOCKED,
    VM_LOCKED_MASK,
    VM_MAYEXEC,
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_NORESERVE,
    VM_SHARED,
    VM_SPECIAL,
    VM_WIPEONFORK,
    page_align,
)
from vmamodel.events import VmaCreated, WarnOn
from vmamodel.file import SHMEM_VM_OPS, VMA_DUMMY_VM_OPS, File, file_has_mmap, shmem_zero_file
from vmamodel.hooks import (
    call_hook,
    check_desc,
    maybe_inject,
    ops_owner,
    oserror,
    refuse_unbuildable,
)
from vmamodel.hugetlb import map_hugetlb_file
from vmamodel.ksm import can_set_ksm_flags_early, ksm_vma_flags
from vmamodel.merge import MERGE_FLAGS_MASK, VmaMergeStruct, vma_merge_new_range
from vmamodel.mm_types import next_shmem_ino, next_vma_id
from vmamodel.mman import MAP_TO_VM_FLAGS, calc_vm_flag_bits, calc_vm_prot_bits
from vmamodel.mmap_action import (
    MmapAction,
    mmap_action_complete,
    mmap_action_prepare,
    refuse_mapped_without_profile,
)
from vmamodel.munmap import (
    VmaMunmapStruct,
    init_vma_munmap,
    vms_abort_munmap_vmas,
    vms_clean_up_area,
    vms_complete_munmap_vmas,
    vms_gather_munmap_vmas,
)
from vmamodel.populate import mm_populate
from vmamodel.unmapped_area import get_unmapped_area
from vmamodel.vma import VM_PAGE_PROT_BITS, Vma, VmAreaDesc, vma_set_page_prot

if TYPE_CHECKING:
    from vmamodel.file import VmOperations
    from vmamodel.mm import AddressSpace
    from vmamodel.mm_types import MmStruct


#: do_mmap()'s VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC, one constant so that the pure build
#: does not combine the three on every call.
VM_MAY_RWX: Final = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
#: do_mmap() populates with MAP_POPULATE unless MAP_NONBLOCK is also set.
_POPULATE_MASK: Final = MAP_POPULATE | MAP_NONBLOCK


def round_hint_to_min(mm: MmStruct, hint: int) -> int:
    """round_hint_to_min(): page-align a hint; raise a low one to mmap_min_addr."""
    hint &= PAGE_MASK
    if hint and hint < mm.mmap_min_addr:
        return page_align(mm.mmap_min_addr)
    return hint


def _file_flags(mm: MmStruct, file: File, flags: int, prot: int, vm_flags: int) -> int:
    """The file branch of do_mmap(): the MAP_TYPE checks and VM_SHARED/VM_MAYSHARE."""
    map_type = flags & MAP_TYPE
    if map_type not in (MAP_SHARED, MAP_SHARED_VALIDATE, MAP_PRIVATE):
        raise oserror(errno.EINVAL, "mmap: bad mapping type")
    if map_type in (MAP_SHARED, MAP_SHARED_VALIDATE):
        if map_type == MAP_SHARED:
            flags &= LEGACY_MAP_MASK
        elif flags & ~(LEGACY_MAP_MASK | (MAP_SYNC if file.extra.get("map_sync") else 0)):
            raise oserror(errno.EOPNOTSUPP, "mmap: MAP_SHARED_VALIDATE with an unknown flag")
        if prot & PROT_WRITE:
            if not file.writable:
                raise oserror(errno.EACCES, "mmap: shared writable map of a read-only file")
        if file.append_only and file.writable:
            raise oserror(errno.EACCES, "mmap: append-only file open for writing")
        vm_flags |= VM_SHARED | VM_MAYSHARE
        if not file.writable:
            vm_flags &= ~(VM_MAYWRITE | VM_SHARED)
    if not file.readable:
        raise oserror(errno.EACCES, "mmap: file not open for reading")
    if file.noexec:
        if vm_flags & VM_EXEC:
            raise oserror(errno.EPERM, "mmap: PROT_EXEC on a noexec mount")
        vm_flags &= ~VM_MAYEXEC
    if not file_has_mmap(file):
        raise oserror(errno.ENODEV, "mmap: the file cannot be mapped")
    if vm_flags & VM_GROWSDOWN:
        raise oserror(errno.EINVAL, "mmap: MAP_GROWSDOWN on a file")
    return vm_flags


def _anon_flags(flags: int, vm_flags: int) -> int:
    """The anonymous branch of do_mmap()."""
    map_type = flags & MAP_TYPE
    if map_type == MAP_SHARED:
        if vm_flags & VM_GROWSDOWN:
            raise oserror(errno.EINVAL, "mmap: MAP_GROWSDOWN on shared anonymous memory")
        return vm_flags | VM_SHARED | VM_MAYSHARE
    if map_type == MAP_DROPPABLE:
        if flags & (MAP_LOCKED | MAP_HUGETLB):
            raise oserror(errno.EINVAL, "mmap: MAP_DROPPABLE with MAP_LOCKED or MAP_HUGETLB")
        if vm_flags & VM_GROWSDOWN:
            raise oserror(errno.EINVAL, "mmap: MAP_DROPPABLE with MAP_GROWSDOWN")
        return vm_flags | VM_DROPPABLE | VM_NORESERVE | VM_WIPEONFORK | VM_DONTDUMP
    if map_type == MAP_PRIVATE:
        return vm_flags
    raise oserror(errno.EINVAL, "mmap: bad mapping type for anonymous memory")


#: The huge page sizes (log2) of x86-64 with gigantic pages: 2 MiB (the default) and 1 GiB.
HUGE_PAGE_SHIFTS = (21, 30)


def hstate_sizelog(page_size_log: int) -> int | None:
    """hstate_sizelog(): the huge page size a MAP_HUGE_* encoding names (0: the default), or
    None when no hstate has that size."""
    if not page_size_log:
        return HUGE_PAGE_SHIFTS[0]
    return page_size_log if page_size_log in HUGE_PAGE_SHIFTS else None


def ksys_mmap_pgoff(
    mm: MmStruct,
    addr: int,
    length: int,
    prot: int,
    flags: int,
    file: File | None,
    offset: int,
) -> int:
    """ksys_mmap_pgoff(), reached from the x86-64 sys_mmap (which first refuses an offset that
    is not page aligned): resolves the file; MAP_HUGETLB makes an anonymous hugetlbfs file
    (vmamodel.hugetlb) and hugetlbfs files round the length up to their huge page size;
    then vm_mmap_pgoff()."""
    if offset % PAGE_SIZE:  # offset_in_page() (& ~PAGE_MASK; a zero makes no new int)
        raise oserror(errno.EINVAL, "mmap: offset not page aligned")
    pgoff = offset >> PAGE_SHIFT
    if flags & MAP_ANONYMOUS:
        file = None
    elif file is None:
        raise oserror(errno.EBADF, "mmap: no file and no MAP_ANONYMOUS")
    if file is not None:
        if file.kind == "hugetlb":
            size = file.extra["hpage_size"]
            length = (length + size - 1) & ~(size - 1) & ULONG_MAX
        elif flags & MAP_HUGETLB:
            raise oserror(errno.EINVAL, "mmap: MAP_HUGETLB on a file that is not hugetlbfs")
    elif flags & MAP_HUGETLB:
        file, length = map_hugetlb_file(cast("AddressSpace", mm), length, flags)
    return vm_mmap_pgoff(mm, file, addr, length, prot, flags, pgoff)


def vm_mmap_pgoff(
    mm: MmStruct, file: File | None, addr: int, length: int, prot: int, flags: int, pgoff: int
) -> int:
    """vm_mmap_pgoff(): do_mmap(), then populate the range when do_mmap() asked for it (the
    kernel does this after dropping mmap_lock, so a failed populate never fails the call)."""
    addr, populate = do_mmap(mm, addr, length, prot, flags, file, pgoff)
    if populate:
        mm_populate(mm, addr, populate, ignore_errors=True)
    return addr


def do_mmap(
    mm: MmStruct, addr: int, length: int, prot: int, flags: int, file: File | None, pgoff: int
) -> tuple[int, int]:
    """do_mmap(): checks in the kernel's order, vm_flags, placement, mmap_region(). Returns the
    address and how many bytes vm_mmap_pgoff() must populate (0: none)."""
    if length == 0:
        raise oserror(errno.EINVAL, "mmap: zero length")
    if mm.read_implies_exec and prot & PROT_READ and not (file is not None and file.noexec):
        prot |= PROT_EXEC
    if flags & MAP_FIXED_NOREPLACE:
        flags |= MAP_FIXED
    if addr and not flags & MAP_FIXED:  # round_hint_to_min() leaves a zero hint alone
        addr = round_hint_to_min(mm, addr)
    length = page_align(length)
    if length == 0:
        raise oserror(errno.ENOMEM, "mmap: length overflows")
    if pgoff + (length >> PAGE_SHIFT) > ULONG_MAX:
        raise oserror(errno.EOVERFLOW, "mmap: offset + length overflows")
    if mm.map_count > mm.max_map_count:
        raise oserror(errno.ENOMEM, "mmap: map_count over max_map_count")
    if mm.injector.armed:
        maybe_inject(mm, "max_map_count")
    pkey = 0
    if prot == PROT_EXEC:
        # An exec-only mapping gets the mm's execute-only protection key (x86 with PKU).
        pkey = cast("AddressSpace", mm).execute_only_pkey()
        if pkey < 0:
            pkey = 0
    vm_flags: int = calc_vm_prot_bits(prot, pkey) | mm.def_flags | VM_MAY_RWX
    if flags & MAP_TO_VM_FLAGS:  # calc_vm_flag_bits() reads only these
        vm_flags |= calc_vm_flag_bits(mm, file, flags)
    addr = get_unmapped_area(mm, file, addr, length, pgoff, flags)  # pgoff 0 without a file
    if flags & MAP_FIXED_NOREPLACE and mm.tree.find_intersection(addr, addr + length):
        raise oserror(errno.EEXIST, "mmap: MAP_FIXED_NOREPLACE over an existing mapping")
    if flags & MAP_LOCKED and not cast("AddressSpace", mm).can_do_mlock():
        raise oserror(errno.EPERM, "mmap: MAP_LOCKED without mlock permission")
    if vm_flags & VM_LOCKED and not cast("AddressSpace", mm).mlock_future_ok(vm_flags, length):
        raise oserror(errno.EAGAIN, "mmap: over RLIMIT_MEMLOCK")
    if file is not None:
        if file.kind == "regular" and (
            pgoff > mm.max_lfs_pages or length >> PAGE_SHIFT > mm.max_lfs_pages - pgoff
        ):
            raise oserror(errno.EOVERFLOW, "mmap: beyond the largest file offset")
        vm_flags = _file_flags(mm, file, flags, prot, vm_flags)
    else:
        map_type = flags & MAP_TYPE
        if map_type != MAP_PRIVATE:  # the switch's MAP_PRIVATE case changes nothing
            vm_flags = _anon_flags(flags, vm_flags)
        pgoff = 0 if map_type == MAP_SHARED else addr >> PAGE_SHIFT
    if flags & MAP_NORESERVE and mm.overcommit_memory != OVERCOMMIT_NEVER:
        vm_flags |= VM_NORESERVE
    addr = mmap_region(mm, file, addr, length, vm_flags, pgoff)
    if vm_flags & VM_LOCKED or flags & _POPULATE_MASK == MAP_POPULATE:
        return addr, length
    return addr, 0


def mmap_region(
    mm: MmStruct, file: File | None, addr: int, length: int, vm_flags: int, pgoff: int
) -> int:
    """mmap_region(): a write-sealed memfd refuses a shared writable mapping (EPERM)."""
    if file is not None and vm_flags & (VM_SHARED | VM_MAYWRITE) == VM_SHARED | VM_MAYWRITE:
        if file.write_sealed:
            raise oserror(errno.EPERM, "mmap: the memfd is write-sealed")
    return __mmap_region(mm, file, addr, length, vm_flags, pgoff)


class MmapState(VmaMunmapStruct):
    """struct mmap_state: the mapping being built, before and after the hooks.

    The kernel's struct embeds the struct vma_munmap_struct of what the mapping replaces
    (map->vms); here MmapState extends VmaMunmapStruct, and ``map`` goes where the kernel
    passes ``&map->vms``: one object per mmap. The two share ``end`` (the mapping's end),
    ``prev`` and ``next`` (vms_gather_munmap_vmas() finds the neighbours that mmap_state
    takes; without a gather nothing reads the vms copies).

    MMAP_STATE(), a macro of __mmap_region(), declares the kernel's struct with its own
    fields set and the rest zeroed; it is written out there (the class has no __init__, so
    creating one runs no Python frame). __mmap_setup() runs init_vma_munmap() on the
    embedded struct; here it runs only when the range overlaps a VMA (there is something to
    gather): without one, the mmap path reads of the embedded struct only ``end``,
    ``nr_pages`` and ``nr_accounted`` (which MMAP_STATE sets) and ``prev``/``next`` (set by
    __mmap_setup()); every other reader of it (the completion, the abort,
    vms_clean_up_area()) runs only when ``nr_pages`` is not zero. ``vm_ops``,
    ``vm_private_data`` and ``file_doesnt_need_get`` are set by call_mmap_prepare() and read
    only after it has run. So an mmap that replaces nothing makes eleven stores and a list
    fewer.
    """

    __slots__ = (
        "addr",
        "charged",
        "file",
        "file_doesnt_need_get",
        "flags",
        "page_prot",
        "pglen",
        "pgoff",
        "vm_ops",
        "vm_private_data",
    )

    addr: int
    pgoff: int
    pglen: int
    flags: int
    file: File | None
    page_prot: int
    charged: int
    vm_ops: VmOperations | None
    vm_private_data: Any
    file_doesnt_need_get: bool


def __mmap_setup(mm: MmStruct, map: MmapState) -> None:
    """__mmap_setup(): gather what the range overlaps, check limits, charge the commit,
    and (past the point of no return for the old mappings) ->close them."""
    # One walk answers both cases: the first VMA ending above addr (in the range, or the
    # next one after it) and the one before it (vma_iter_next_rewind()).
    after, before = mm.tree.find_prev(map.addr)
    if after is not None and after.vm_start < map.end:
        init_vma_munmap(map, after, map.addr, map.end)
        try:
            vms_gather_munmap_vmas(mm, map)
        except OSError:
            map.nr_pages = 0
            raise
        # map.prev and map.next are the gather's vms.prev and vms.next.
    else:
        map.next = after
        map.prev = before
    if not may_expand_vm(mm, map.flags, map.pglen - map.nr_pages):
        raise oserror(errno.ENOMEM, "mmap: over RLIMIT_AS or RLIMIT_DATA")
    if accountable_mapping(map.file, map.flags):
        map.charged = map.pglen - map.nr_accounted
        if map.charged:
            security_vm_enough_memory(mm, map.charged)
        map.nr_accounted = 0
        map.flags |= VM_ACCOUNT
    if map.nr_pages:  # the test vms_clean_up_area() opens with
        vms_clean_up_area(mm, map)


def call_mmap_prepare(mm: MmStruct, map: MmapState, file: File) -> VmAreaDesc:
    """call_mmap_prepare(): the driver edits a vm_area_desc before any VMA exists, then
    (v4 and later) its action is prepared; the permitted fields are copied back."""

    desc = VmAreaDesc(
        mm, file, map.addr, map.end, map.pgoff, map.file, map.flags, map.page_prot, MmapAction()
    )
    assert file.f_op is not None and file.f_op.mmap_prepare is not None
    mmap_prepare = file.f_op.mmap_prepare
    error = call_hook(
        mm, "mmap_prepare", ops_owner(file.f_op), None,
        lambda: (desc.start, desc.end, desc.pgoff, int(desc.vm_flags)),
        lambda: mmap_prepare(desc), "mmap_prepare", lambda: check_desc(desc),
    )
    if error is not None:
        raise error
    if (desc.start, desc.end) != (map.addr, map.end) and mm.tracer.active:
        mm.tracer.emit(WarnOn("mmap_prepare changed desc->start/end", "ignored by the kernel"))
    # Under 6.18 this refuses any use of desc.action, and ops with mapped are refused: a
    # driver using either would not compile there.
    def prepare() -> None:
        mmap_action_prepare(cast("AddressSpace", mm), desc)
        refuse_mapped_without_profile(cast("AddressSpace", mm), desc.vm_ops)

    refuse_unbuildable(mm, "mmap_prepare", ops_owner(file.f_op), None, prepare)
    map.pgoff = desc.pgoff
    map.file_doesnt_need_get = desc.vm_file is not map.file
    if map.file_doesnt_need_get:
        map.file = desc.vm_file
    map.flags = desc.vm_flags
    map.page_prot = desc.page_prot
    map.vm_ops = desc.vm_ops
    map.vm_private_data = desc.private_data
    return desc


def __mmap_new_file_vma(mm: MmStruct, map: MmapState, vma: Vma) -> None:
    """__mmap_new_file_vma(): attach the file; a legacy driver's .mmap runs on the VMA
    before it is in the tree. If it fails, the VMA is dropped without ->close."""

    file = map.file
    assert file is not None
    vma.vm_file = file
    vma.vm_ops = VMA_DUMMY_VM_OPS
    if file.f_op is None or file.f_op.mmap is None:
        return
    try:
        vfs_mmap(cast("AddressSpace", mm), file, vma)
    except OSError:
        # mmap_file(): no further hooks may run on a half-made VMA; unmap_region() undoes
        # whatever the driver already mapped (a remap done before a later step failed).
        vma.vm_ops = VMA_DUMMY_VM_OPS
        vma.vm_file = None
        mm.pages.zap(vma.vm_start, vma.vm_end)
        raise
    if vma.vm_start != map.addr and mm.tracer.active:
        mm.tracer.emit(WarnOn("WARN_ON_ONCE: .mmap changed vm_start"))
    if (
        map.flags != vma.vm_flags
        and not map.flags & VM_MAYWRITE
        and vma.vm_flags & VM_MAYWRITE
        and mm.tracer.active
    ):
        mm.tracer.emit(WarnOn("VM_WARN_ON_ONCE: .mmap added VM_MAYWRITE"))
    map.file = vma.vm_file
    map.flags = vma.vm_flags


def __mmap_new_vma(mm: MmStruct, map: MmapState) -> Vma:
    """__mmap_new_vma(): allocate and insert a VMA because the range did not merge."""
    armed = mm.injector.armed
    if armed:
        maybe_inject(mm, "vma_alloc")
    vma = Vma(
        mm, next_vma_id(mm), map.addr, map.end, map.pgoff, map.flags, None, None, map.page_prot
    )
    if armed:
        maybe_inject(mm, "vma_prealloc")
    if map.file is not None:
        __mmap_new_file_vma(mm, map, vma)
    elif map.flags & VM_SHARED:
        shmem_zero_setup(mm, vma)
    # else vma_set_anonymous(): vm_ops is None from the constructor
    mm.tree.insert(vma)
    mm.map_count += 1
    if mm.tracer.active:
        mm.tracer.emit(VmaCreated(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags))
    return vma


def shmem_zero_setup(mm: MmStruct, vma: Vma) -> None:
    """shmem_zero_setup(): a shared anonymous mapping gets its own /dev/zero shmem file."""

    if mm.injector.armed:
        maybe_inject(mm, "shmem_zero_setup")
    file = shmem_zero_file(next_shmem_ino(mm))
    file.size = vma.vm_end - vma.vm_start
    vma.vm_file = file
    vma.vm_ops = SHMEM_VM_OPS


def vma_supports_mlock(vma: Vma) -> bool:
    """vma_supports_mlock(): not VM_SPECIAL, hugetlb or droppable."""
    return not vma.vm_flags & (VM_SPECIAL | VM_HUGETLB | VM_DROPPABLE)


def __mmap_complete(mm: MmStruct, map: MmapState, vma: Vma) -> None:
    """__mmap_complete(): finish unmapping what was replaced, then the statistics."""
    flags = vma.vm_flags
    if map.nr_pages:
        vms_complete_munmap_vmas(mm, map, "replaced by MAP_FIXED")
    vm_stat_account(mm, flags, map.pglen)
    if flags & VM_LOCKED:
        if not vma_supports_mlock(vma):
            vma.vm_flags &= ~VM_LOCKED_MASK
        else:
            mm.locked_vm += map.pglen
    vma_set_page_prot(vma)


def __mmap_region(
    mm: MmStruct, file: File | None, addr: int, length: int, vm_flags: int, pgoff: int
) -> int:
    """__mmap_region(): the mapping pipeline, step by step as the kernel runs it.

    setup (gather, limits, charge, close old) → mmap_prepare → KSM flags (update_ksm_flags,
    early unless a legacy .mmap could change them) → merge with neighbours → or a
    new VMA (with a legacy .mmap) → user-defined fields → complete → for a new VMA of an
    mmap_prepare file: the action, then vm_ops->mapped (v4 and later).
    """
    have_mmap_prepare = file is not None and file.f_op is not None and (
        file.f_op.mmap_prepare is not None
    )
    # MMAP_STATE(), written out (see MmapState).
    map = MmapState()
    map.addr = addr
    map.end = addr + length
    map.pgoff = pgoff
    map.pglen = length >> PAGE_SHIFT
    map.flags = vm_flags
    map.file = file
    map.page_prot = vm_flags & VM_PAGE_PROT_BITS  # vm_get_page_prot(), written out
    map.charged = map.nr_pages = map.nr_accounted = 0
    desc: VmAreaDesc | None = None
    try:
        __mmap_setup(mm, map)
        if have_mmap_prepare:
            assert file is not None
            desc = call_mmap_prepare(mm, map, file)
    except OSError:
        # The commit charge of a failed mmap_prepare is not returned (the kernel's own leak).
        vms_abort_munmap_vmas(mm, map)
        raise
    # update_ksm_flags(): ksm_vma_flags() changes nothing unless MMF_VM_MERGE_ANY is set
    # (so can_set_ksm_flags_early() is asked only then).
    ksm_late = False
    if mm.ksm_merge_any:
        if file is None or can_set_ksm_flags_early(file):
            map.flags = ksm_vma_flags(mm, map.file, map.flags)
        else:
            ksm_late = True
    vma: Vma | None = None
    prev, nxt, flags = map.prev, map.next, map.flags
    # vma_merge_new_range() merges only with a neighbour that touches the range and has the
    # same vm_flags but VM_IGNORE_MERGE (the tests of can_vma_merge_left/right() and
    # is_mergeable_vma() that come first). When no neighbour passes them its answer is "no
    # merge", so the struct is not built; a tracer still sees the whole attempt (which rule
    # refused which neighbour).
    if (
        (prev is not None and prev.vm_end == map.addr
         and not (prev.vm_flags ^ flags) & MERGE_FLAGS_MASK)
        or (nxt is not None and nxt.vm_start == map.end
            and not (nxt.vm_flags ^ flags) & MERGE_FLAGS_MASK)
        or (mm.tracer.active and (prev is not None or nxt is not None))
    ):
        vmg = VmaMergeStruct(mm, map.addr, map.end, map.pgoff, flags, map.file, prev, None, nxt)
        vma = vma_merge_new_range(vmg)
    allocated_new = False
    if vma is None:
        if ksm_late:
            map.flags = ksm_vma_flags(mm, map.file, map.flags)
        try:
            vma = __mmap_new_vma(mm, map)
        except OSError:
            if map.charged:
                vm_unacct_memory(mm, map.charged)
            vms_abort_munmap_vmas(mm, map)
            raise
        allocated_new = True
    if have_mmap_prepare:
        if map.vm_ops is not None:
            vma.vm_ops = map.vm_ops
        vma.vm_private_data = map.vm_private_data
    __mmap_complete(mm, map, vma)
    if have_mmap_prepare and allocated_new and mm.profile.has_actions and desc is not None:

        mmap_action_complete(cast("AddressSpace", mm), vma, desc.action, is_compat=False)
    return addr
