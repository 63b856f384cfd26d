"""Choosing an address for a new mapping on x86-64.

The entry point is :func:`get_unmapped_area` (``__get_unmapped_area`` in mm/mmap.c). It picks
one allocator:

- the file's own ``get_unmapped_area`` hook (``ThpFileOperations`` for disk filesystems that
  align to huge pages, such as ext4 and xfs), or shmem's for shmem files and shared anonymous
  memory (``shmem_get_unmapped_area``, mm/shmem.c);
- THP alignment for anonymous memory without a hint whose length is a multiple of 2 MiB
  (``thp_get_unmapped_area_vmflags``, mm/huge_memory.c). It depends only on the kernel being
  built with transparent huge pages (``mm.thp_enabled``), not on the sysfs THP mode;
- otherwise the layout's allocator (``mm_get_unmapped_area_vmflags``): top-down below
  ``mmap_base`` or, in the legacy layout, bottom-up from ``mmap_legacy_base``
  (arch/x86/kernel/sys_x86_64.c), both searching gaps with ``unmapped_area[_topdown]``
  (mm/vma.c), which keep ``stack_guard_gap`` free below a VM_GROWSDOWN VMA.

Not modelled: hugetlbfs files, AMD family 15h I-cache alignment (``align_va_addr``, which also
needs randomisation), the 5-level-paging window above 47 bits, compat (32-bit) syscalls, and
the randomised start of the MAP_32BIT window; placement is therefore exact for processes
without address randomisation (personality ADDR_NO_RANDOMIZE), as the host tests run them.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from vmamodel.constants import (
    MAP_32BIT,
    MAP_ABOVE4G,
    MAP_FIXED,
    MAP_SHARED,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_SIZE,
    ULONG_MAX,
    VM_GROWSDOWN,
    VM_SHADOW_STACK,
    VM_STARTGAP_FLAGS,
    page_align,
)
from vmamodel.file import GenericFileOperations
from vmamodel.hooks import oserror

if TYPE_CHECKING:
    from collections.abc import Callable

    from vmamodel.file import File
    from vmamodel.mm_types import MmStruct
    from vmamodel.vma import Vma

    GetArea = Callable[["MmStruct", "File | None", int, int, int, int], int]

SZ_4G: Final = 1 << 32
#: find_start_end(): the MAP_32BIT window (without randomisation).
MAP_32BIT_LOW: Final = 0x40000000
MAP_32BIT_HIGH: Final = 0x80000000
#: HPAGE_PMD_ORDER on x86-64 with 4 KiB pages.
PMD_ORDER: Final = 9
#: loff_t is signed: offsets must stay below 2**63.
LOFF_MAX: Final = (1 << 63) - 1

SHMEM_HUGE_MODES: Final = ("always", "within_size", "advise", "never", "deny", "force")


@dataclass(frozen=True, slots=True)
class ShmemHuge:
    """shmem's huge page settings that decide its placement (mm/shmem.c).

    ``enabled`` is /sys/kernel/mm/transparent_hugepage/shmem_enabled (also the huge= setting
    of the internal mount behind memfds and shared anonymous memory). ``orders`` and
    ``inherit_orders`` are bitmasks of the page orders whose per-size
    hugepages-*/shmem_enabled says always, within_size or advise, and inherit.
    """

    enabled: str = "never"
    orders: int = 0
    inherit_orders: int = 1 << PMD_ORDER

    def __post_init__(self) -> None:
        if self.enabled not in SHMEM_HUGE_MODES:
            raise ValueError(f"unknown shmem_enabled mode {self.enabled!r}")


class VmUnmappedAreaInfo:
    """struct vm_unmapped_area_info: what the gap search is asked for. As the kernel fills
    its struct on the stack field by field, each allocator sets every field in place (the
    class has no __init__, so creating one runs no Python frame; an unset field would raise
    AttributeError). A plain class, not a dataclass with slots, so that mypyc compiles it."""

    __slots__ = (
        "align_mask", "align_offset", "high_limit", "length", "low_limit", "start_gap",
        "topdown",
    )

    length: int
    low_limit: int
    high_limit: int
    #: VM_UNMAPPED_AREA_TOPDOWN in info.flags
    topdown: bool
    align_mask: int
    align_offset: int
    start_gap: int


# -- the gap search (mm/vma.c) ----------------------------------------------------------------


def vm_start_gap(mm: MmStruct, vma: Vma) -> int:
    """vm_start_gap(): the lowest address a VMA claims, counting the stack guard gap below a
    VM_GROWSDOWN VMA and one page below a shadow stack (clamped at 0)."""
    start = vma.vm_start
    if vma.vm_flags & VM_GROWSDOWN:
        start = max(0, start - mm.stack_guard_gap)
    elif vma.vm_flags & VM_SHADOW_STACK:
        start = max(0, start - PAGE_SIZE)
    return start


def unmapped_area(mm: MmStruct, info: VmUnmappedAreaInfo) -> int:
    """unmapped_area(): the lowest fitting address. A gap whose next VMA's start gap
    (vm_start_gap) would be overlapped is skipped: the search restarts above that VMA."""
    length = info.length
    if info.align_mask or info.start_gap:  # (adding zeros would make new ints)
        length += info.align_mask + info.start_gap
    low = max(info.low_limit, mm.mmap_min_addr)
    while True:
        # vma_iter_area_lowest(): the lowest gap of length bytes in [low, high_limit).
        found = mm.tree.lowest_gap(low, info.high_limit, length)
        if found is None:
            raise oserror(errno.ENOMEM, "no free gap")
        start, _, following = found
        gap = start + info.start_gap
        gap += (info.align_offset - gap) & info.align_mask
        # x86 has no VM_GROWSUP, so only the following VMA can claim a guard gap.
        if (
            following is not None
            and following.vm_flags & VM_STARTGAP_FLAGS
            and vm_start_gap(mm, following) < gap + length - 1
        ):
            low = following.vm_end
            continue
        return gap


def unmapped_area_topdown(mm: MmStruct, info: VmUnmappedAreaInfo) -> int:
    """unmapped_area_topdown(): the highest fitting address. When the VMA above the chosen
    range claims a start gap that reaches into it, the high limit drops to that VMA's
    vm_start_gap and the whole search restarts (lower gaps above the new limit are lost)."""
    length = info.length
    if info.align_mask or info.start_gap:  # (adding zeros would make new ints)
        length += info.align_mask + info.start_gap
    low = mm.mmap_min_addr
    if info.low_limit > low:
        low = info.low_limit
    high = info.high_limit
    while True:
        # vma_iter_area_highest(): the highest gap of length bytes in [low, high).
        found = mm.tree.highest_gap(low, high, length)
        if found is None:
            raise oserror(errno.ENOMEM, "no free gap")
        _, gap_end, following = found
        gap = gap_end - info.length
        if info.align_mask:  # (a zero mask moves nothing)
            gap -= (gap - info.align_offset) & info.align_mask
        if following is not None and following.vm_flags & VM_STARTGAP_FLAGS:
            guard = vm_start_gap(mm, following)
            if guard < gap_end:
                high = guard
                continue
        return gap


def vm_unmapped_area(mm: MmStruct, info: VmUnmappedAreaInfo) -> int:
    """vm_unmapped_area(): the search in the direction ``info`` asks for."""
    if info.topdown:
        return unmapped_area_topdown(mm, info)
    return unmapped_area(mm, info)


# -- the x86-64 allocators (arch/x86/kernel/sys_x86_64.c) --------------------------------------


def mmap_address_hint_valid(mm: MmStruct, addr: int, length: int) -> bool:
    """mmap_address_hint_valid() (arch/x86/mm/mmap.c): the range fits below TASK_SIZE (with
    4-level paging the 47-bit window is the whole task size)."""
    return addr <= mm.task_size - length


def stack_guard_placement(vm_flags: int) -> int:
    """stack_guard_placement(): a shadow stack keeps one page free below itself."""
    return PAGE_SIZE if vm_flags & VM_SHADOW_STACK else 0


def _hint_is_free(mm: MmStruct, addr: int, length: int) -> bool:
    """The hint test of both allocators: the first VMA ending above ``addr`` starts (with its
    start gap) no lower than ``addr + length``. The end gap of the VMA below is not checked."""
    vma = mm.tree.find(addr)
    return vma is None or addr + length <= vm_start_gap(mm, vma)


def get_align_mask(file: File | None) -> int:
    """get_align_mask() (arch/x86/kernel/sys_x86_64.c): a hugetlbfs file's huge page mask
    (huge_page_mask_align); 0 otherwise (AMD family 15h randomisation is not modelled)."""
    if file is None or file.kind != "hugetlb":
        return 0
    size: int = file.extra["hpage_size"]
    return (size - 1) & PAGE_MASK


def arch_get_unmapped_area(
    mm: MmStruct, file: File | None, addr: int, length: int, pgoff: int, flags: int,
    vm_flags: int = 0,
) -> int:
    """arch_get_unmapped_area(): the bottom-up allocator. A free hint (rounded up to a page)
    wins; else the lowest gap in [mmap_legacy_base, TASK_SIZE), or in [1 GiB, 2 GiB) for
    MAP_32BIT. MAP_ABOVE4G plays no part here."""
    if flags & MAP_FIXED:
        return addr
    begin, end = mm.mmap_legacy_base, mm.task_size
    if flags & MAP_32BIT:
        begin, end = MAP_32BIT_LOW, MAP_32BIT_HIGH
    if length > end:
        raise oserror(errno.ENOMEM, "length larger than the allocation window")
    if addr:
        addr = page_align(addr)
        if end - length >= addr and _hint_is_free(mm, addr, length):
            return addr
    # The struct vm_unmapped_area_info, filled in place as the kernel does (get_align_mask()
    # and stack_guard_placement() only under the condition each opens with).
    info = VmUnmappedAreaInfo()
    info.topdown = False
    info.length = length
    info.low_limit = begin
    info.high_limit = end
    info.align_mask = 0 if file is None else get_align_mask(file)
    info.align_offset = (pgoff << PAGE_SHIFT) & ULONG_MAX
    info.start_gap = stack_guard_placement(vm_flags) if vm_flags & VM_SHADOW_STACK else 0
    return vm_unmapped_area(mm, info)


def arch_get_unmapped_area_topdown(
    mm: MmStruct, file: File | None, addr: int, length: int, pgoff: int, flags: int,
    vm_flags: int = 0,
) -> int:
    """arch_get_unmapped_area_topdown(): a free hint wins; else the highest gap below
    mmap_base (above 4 GiB with MAP_ABOVE4G); if none, or for MAP_32BIT, the bottom-up
    allocator with the original hint."""
    if length > mm.task_size:
        raise oserror(errno.ENOMEM, "length larger than TASK_SIZE")
    if flags & MAP_FIXED:
        return addr
    if not flags & MAP_32BIT:
        if addr:
            # A hint below one page becomes 0 here and is tested like any other address.
            hint = addr & PAGE_MASK
            if mmap_address_hint_valid(mm, hint, length) and _hint_is_free(mm, hint, length):
                return hint
        # Filled in place as the kernel does (see arch_get_unmapped_area).
        info = VmUnmappedAreaInfo()
        info.topdown = True
        info.length = length
        info.low_limit = SZ_4G if flags & MAP_ABOVE4G else PAGE_SIZE
        info.high_limit = mm.mmap_base
        info.align_mask = 0 if file is None else get_align_mask(file)
        info.align_offset = (pgoff << PAGE_SHIFT) & ULONG_MAX if pgoff else 0
        info.start_gap = stack_guard_placement(vm_flags) if vm_flags & VM_SHADOW_STACK else 0
        try:
            return unmapped_area_topdown(mm, info)  # vm_unmapped_area() of a top-down info
        except OSError:
            pass
    # The fallback passes no vm_flags, so a shadow stack loses its start gap here.
    return arch_get_unmapped_area(mm, file, addr, length, pgoff, flags, 0)


def mm_get_unmapped_area_vmflags(
    mm: MmStruct, file: File | None, addr: int, length: int, pgoff: int, flags: int,
    vm_flags: int = 0,
) -> int:
    """mm_get_unmapped_area_vmflags(): the allocator of the layout chosen at exec (MMF_TOPDOWN
    unless the legacy layout was asked for)."""
    if mm.legacy_layout:
        return arch_get_unmapped_area(mm, file, addr, length, pgoff, flags, vm_flags)
    return arch_get_unmapped_area_topdown(mm, file, addr, length, pgoff, flags, vm_flags)


def mm_get_unmapped_area(
    mm: MmStruct, file: File | None, addr: int, length: int, pgoff: int, flags: int
) -> int:
    """mm_get_unmapped_area(): the layout's allocator without vm_flags."""
    return mm_get_unmapped_area_vmflags(mm, file, addr, length, pgoff, flags, 0)


# -- huge page alignment (mm/huge_memory.c, mm/shmem.c) ----------------------------------------


def __thp_get_unmapped_area(
    mm: MmStruct, file: File | None, addr: int, length: int, off: int, flags: int,
    size: int, vm_flags: int,
) -> int:
    """__thp_get_unmapped_area(): search for ``length + size`` bytes and move the result up
    so that address and file offset agree modulo ``size``. Returns 0 when it does not apply
    (the file range holds no whole ``size`` block) or the padded search fails.

    Quirks kept: a hint is honoured only when the padded length fits there; and in the
    top-down layout an already aligned result is moved up by a whole ``size``, which leaves
    ``size`` bytes free above the new mapping instead of below it."""
    off_end = off + length
    off_align = (off + size - 1) & ~(size - 1)
    if off_end <= off_align or off_end - off_align < size:
        return 0
    len_pad = length + size
    if len_pad > (1 << 64) - 1 or off + len_pad > LOFF_MAX:
        return 0
    try:
        ret = mm_get_unmapped_area_vmflags(
            mm, file, addr, len_pad, off >> PAGE_SHIFT, flags, vm_flags
        )
    except OSError:
        return 0
    if ret == addr:
        return addr
    off_sub = (off - ret) & (size - 1)
    if not mm.legacy_layout and not off_sub:
        return ret + size
    return ret + off_sub


def thp_get_unmapped_area_vmflags(
    mm: MmStruct, file: File | None, addr: int, length: int, pgoff: int, flags: int,
    vm_flags: int = 0,
) -> int:
    """thp_get_unmapped_area_vmflags(): PMD-aligned placement, else the plain allocator."""
    ret = __thp_get_unmapped_area(
        mm, file, addr, length, pgoff << PAGE_SHIFT, flags, PMD_SIZE, vm_flags
    )
    if ret:
        return ret
    return mm_get_unmapped_area_vmflags(mm, file, addr, length, pgoff, flags, vm_flags)


def thp_get_unmapped_area(
    mm: MmStruct, file: File | None, addr: int, length: int, pgoff: int, flags: int
) -> int:
    """thp_get_unmapped_area(): the file_operations hook of ext4, xfs and other filesystems
    that back files with large folios."""
    return thp_get_unmapped_area_vmflags(mm, file, addr, length, pgoff, flags, 0)


class ThpFileOperations(GenericFileOperations):
    """A disk filesystem whose file_operations set ``get_unmapped_area`` to
    thp_get_unmapped_area (ext4, xfs, ...): mappings that cover a whole 2 MiB block of the
    file are placed so that address and offset agree modulo 2 MiB. The hook is the function
    itself, so ``f_op.get_unmapped_area is thp_get_unmapped_area`` holds as in the kernel
    (vma_multi_allowed() in mm/mremap.c tests exactly that)."""

    def __init__(self) -> None:
        # An instance attribute: the function itself, whether or not this module is compiled.
        self.get_unmapped_area = thp_get_unmapped_area


def _shmem_hpage_size(mm: MmStruct, file: File | None) -> int:
    """The huge page size shmem aligns to, or 0 when it does not align (the huge= setting of
    the superblock is "never" and, for shared anonymous memory, no per-size order is on)."""
    config: ShmemHuge = mm.shmem_huge
    if config.enabled == "force":
        return PMD_SIZE
    order = 0
    if file is None:
        orders = config.orders | (config.inherit_orders if config.enabled != "never" else 0)
        if orders:
            order = orders.bit_length() - 1
    if config.enabled == "never" and not order:
        return 0
    return PAGE_SIZE << order if order else PMD_SIZE


def shmem_get_unmapped_area(
    mm: MmStruct, file: File | None, uaddr: int, length: int, pgoff: int, flags: int
) -> int:
    """shmem_get_unmapped_area(): the layout's choice, moved to a huge page boundary (matching
    the file offset) when shmem may use huge pages and no hint was honoured. Every shmem file
    is taken to live on the internal mount (memfd, shared anonymous memory)."""
    if length > mm.task_size:
        raise oserror(errno.ENOMEM, "length larger than TASK_SIZE")
    addr = mm_get_unmapped_area(mm, file, uaddr, length, pgoff, flags)
    if not mm.thp_enabled or addr > mm.task_size - length:
        return addr
    if mm.shmem_huge.enabled == "deny" or flags & MAP_FIXED or uaddr == addr:
        return addr
    hpage_size = _shmem_hpage_size(mm, file)
    if not hpage_size or length < hpage_size:
        return addr
    offset = (pgoff << PAGE_SHIFT) & (hpage_size - 1)
    if offset and offset + length < 2 * hpage_size:
        return addr
    if addr & (hpage_size - 1) == offset:
        return addr
    inflated_len = length + hpage_size - PAGE_SIZE
    if inflated_len > mm.task_size:
        return addr
    try:
        inflated_addr = mm_get_unmapped_area(mm, None, uaddr, inflated_len, 0, flags)
    except OSError:
        return addr
    inflated_offset = inflated_addr & (hpage_size - 1)
    inflated_addr += offset - inflated_offset
    if inflated_offset > offset:
        inflated_addr += hpage_size
    if inflated_addr > mm.task_size - length:
        return addr
    return inflated_addr


# -- the entry point (mm/mmap.c) ---------------------------------------------------------------


def _file_get_area(file: File) -> GetArea | None:
    """file->f_op->get_unmapped_area; every shmem file has shmem's (shmem_file_operations)."""
    hook = file.f_op.get_unmapped_area if file.f_op is not None else None
    if hook is not None:
        return hook
    return shmem_get_unmapped_area if file.shmem else None


def get_unmapped_area(
    mm: MmStruct, file: File | None, addr: int, length: int, pgoff: int, flags: int,
    vm_flags: int = 0,
) -> int:
    """__get_unmapped_area(): pick the allocator (file hook, shmem for shared anonymous
    memory, THP alignment, or the layout's), then check the result: ENOMEM past TASK_SIZE,
    EINVAL if unaligned, EPERM below mmap_min_addr without CAP_SYS_RAWIO."""
    if length > mm.task_size:
        raise oserror(errno.ENOMEM, "length larger than TASK_SIZE")
    get_area: GetArea | None = None
    if file is not None:
        get_area = _file_get_area(file)
    else:
        pgoff = 0  # always zero for anonymous memory
        if flags & MAP_SHARED:
            # mmap_region() will give it a shmem file, so shmem chooses the place.
            get_area = shmem_get_unmapped_area
    if get_area is not None:
        result = get_area(mm, file, addr, length, pgoff, flags)
    elif not length % PMD_SIZE and not addr and file is None and mm.thp_enabled:
        result = thp_get_unmapped_area_vmflags(mm, file, addr, length, pgoff, flags, vm_flags)
    elif mm.legacy_layout:  # mm_get_unmapped_area_vmflags(), written out (every mmap)
        result = arch_get_unmapped_area(mm, file, addr, length, pgoff, flags, vm_flags)
    else:
        result = arch_get_unmapped_area_topdown(mm, file, addr, length, pgoff, flags, vm_flags)
    if result > mm.task_size - length:
        raise oserror(errno.ENOMEM, "address range past TASK_SIZE")
    if result % PAGE_SIZE:  # offset_in_page() (& ~PAGE_MASK: no mask to make)
        raise oserror(errno.EINVAL, "unaligned address")
    if result < mm.mmap_min_addr and not mm.cap_sys_rawio:
        raise oserror(errno.EPERM, "below mmap_min_addr")
    return result
