"""Choosing an address: __get_unmapped_area (mm/mmap.c), the x86-64 allocators
(arch/x86/kernel/sys_x86_64.c) and the gap search of mm/vma.c (unmapped_area[_topdown])."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.constants import (
    MAP_32BIT,
    MAP_ABOVE4G,
    MAP_FIXED,
    MAP_SHARED,
    PAGE_MASK,
    PAGE_SIZE,
    PMD_SIZE,
    VM,
    VM_STARTGAP_FLAGS,
)
from vmamodel.hooks import oserror

if TYPE_CHECKING:
    from vmamodel.file import File
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma

SZ_4G = 1 << 32
MAP_32BIT_LOW = 0x40000000
MAP_32BIT_HIGH = 0x80000000


def vm_start_gap(mm: AddressSpace, vma: Vma) -> int:
    """vm_start_gap(): the stack guard gap below a VM_GROWSDOWN VMA (clamped at 0)."""
    start = vma.vm_start
    if vma.vm_flags & VM.GROWSDOWN:
        start = max(0, start - mm.stack_guard_gap)
    elif vma.vm_flags & VM.SHADOW_STACK:
        start = max(0, start - PAGE_SIZE)
    return start


def _effective_end(mm: AddressSpace, gap_end: int, following: Vma | None) -> int:
    if following is not None and following.vm_flags & VM_STARTGAP_FLAGS:
        return min(gap_end, vm_start_gap(mm, following))
    return gap_end


def unmapped_area_topdown(mm: AddressSpace, length: int, low: int, high: int) -> int:
    """unmapped_area_topdown(): the highest address a with [a, a+length) free, inside
    [max(low, mmap_min_addr), high), respecting the start gap of the VMA above."""
    low = max(low, mm.mmap_min_addr)
    for gap_start, gap_end, following in mm.tree.gaps_topdown(low, high):
        end = _effective_end(mm, gap_end, following)
        if end - gap_start >= length:
            return end - length
    raise oserror(errno.ENOMEM, "no free gap below mmap_base")


def unmapped_area(mm: AddressSpace, length: int, low: int, high: int) -> int:
    """unmapped_area(): the lowest fitting address in [max(low, mmap_min_addr), high)."""
    low = max(low, mm.mmap_min_addr)
    for gap_start, gap_end, following in mm.tree.gaps_bottomup(low, high):
        if gap_end - gap_start < length:
            continue
        if (
            following is not None
            and following.vm_flags & VM_STARTGAP_FLAGS
            and vm_start_gap(mm, following) < gap_start + length - 1
        ):
            continue
        return gap_start
    raise oserror(errno.ENOMEM, "no free gap")


def _hint_fits(mm: AddressSpace, addr: int, length: int) -> bool:
    vma = mm.tree.find(addr)
    return vma is None or addr + length <= vm_start_gap(mm, vma)


def arch_get_unmapped_area(mm: AddressSpace, addr: int, length: int, flags: int) -> int:
    """arch_get_unmapped_area(): the legacy bottom-up layout from mmap_legacy_base."""
    if flags & MAP_FIXED:
        return addr
    begin, end = mm.mmap_legacy_base, mm.task_size
    if flags & MAP_32BIT:
        begin, end = MAP_32BIT_LOW, MAP_32BIT_HIGH
    if length > end:
        raise oserror(errno.ENOMEM, "length larger than the allocation window")
    if addr:
        addr = (addr + PAGE_SIZE - 1) & PAGE_MASK
        if end - length >= addr and _hint_fits(mm, addr, length):
            return addr
    if flags & MAP_ABOVE4G:
        begin = SZ_4G
    return unmapped_area(mm, length, begin, end)


def arch_get_unmapped_area_topdown(mm: AddressSpace, addr: int, length: int, flags: int) -> int:
    """arch_get_unmapped_area_topdown(): a free hint wins, else the highest gap below
    mmap_base, else bottom-up."""
    if length > mm.task_size:
        raise oserror(errno.ENOMEM, "length larger than TASK_SIZE")
    if flags & MAP_FIXED:
        return addr
    if not flags & MAP_32BIT:
        if addr:
            addr &= PAGE_MASK
            if mm.task_size - length >= addr and _hint_fits(mm, addr, length):
                return addr
        low = SZ_4G if flags & MAP_ABOVE4G else PAGE_SIZE
        try:
            return unmapped_area_topdown(mm, length, low, mm.mmap_base)
        except OSError:
            pass
    return arch_get_unmapped_area(mm, 0, length, flags)


def mm_get_unmapped_area(mm: AddressSpace, addr: int, length: int, flags: int) -> int:
    """mm_get_unmapped_area_vmflags(): the layout chosen at exec time."""
    if mm.legacy_layout:
        return arch_get_unmapped_area(mm, addr, length, flags)
    return arch_get_unmapped_area_topdown(mm, addr, length, flags)


def thp_get_unmapped_area(mm: AddressSpace, addr: int, length: int, flags: int) -> int:
    """__thp_get_unmapped_area(): ask for length + 2 MiB and align the result to 2 MiB, so
    that large anonymous mappings can use huge pages; fall back to a plain search."""
    padded = length + PMD_SIZE
    if padded < length:
        return mm_get_unmapped_area(mm, addr, length, flags)
    try:
        ret = mm_get_unmapped_area(mm, 0, padded, flags)
    except OSError:
        return mm_get_unmapped_area(mm, addr, length, flags)
    if ret == addr:
        return addr
    off_sub = (-ret) & (PMD_SIZE - 1)
    if not mm.legacy_layout and off_sub == 0:
        # Already aligned: the top-down search would otherwise leave a 2 MiB hole above.
        off_sub = PMD_SIZE
    return ret + off_sub


def get_unmapped_area(
    mm: AddressSpace, file: File | None, addr: int, length: int, pgoff: int, flags: int
) -> int:
    """__get_unmapped_area(): pick the allocator, then check the result."""
    if length > mm.task_size:
        raise oserror(errno.ENOMEM, "length larger than TASK_SIZE")
    if file is not None and file.f_op is not None and file.f_op.get_unmapped_area is not None:
        result = file.f_op.get_unmapped_area(mm, file, addr, length, pgoff, flags)
    elif (
        file is None
        and not flags & MAP_SHARED
        and not addr
        and length % PMD_SIZE == 0
        and mm.thp_enabled
    ):
        result = thp_get_unmapped_area(mm, addr, length, flags)
    else:
        result = mm_get_unmapped_area(mm, addr, length, flags)
    if result > mm.task_size - length:
        raise oserror(errno.ENOMEM, "address range past TASK_SIZE")
    if result & (PAGE_SIZE - 1):
        raise oserror(errno.EINVAL, "unaligned address")
    if result < mm.mmap_min_addr and not mm.cap_sys_rawio:
        raise oserror(errno.EPERM, "below mmap_min_addr")
    return result
