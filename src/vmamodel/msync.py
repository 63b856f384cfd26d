"""msync(2) (mm/msync.c) and mincore(2) (mm/mincore.c): what they answer over holes.

msync checks its flags and start (EINVAL), then walks the VMAs of the range: a hole makes
the result ENOMEM (at once with plain MS_ASYNC, after the walk otherwise); MS_INVALIDATE
on a VM_LOCKED VMA is EBUSY. Writing back shared file pages is not the VMA layer's.

mincore needs an aligned start (EINVAL) and a range inside the task (ENOMEM), then reports
page by page whether the page is resident; reaching an address with no VMA is ENOMEM. Of
anonymous memory a page is resident when it was faulted in; of a file mapping the model
knows only the pages this process faulted (page cache state is not modelled).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.constants import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, ULONG_MAX, VM_LOCKED, page_align
from vmamodel.hooks import oserror

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace

MS_ASYNC = 1
MS_INVALIDATE = 2
MS_SYNC = 4


def sys_msync(mm: AddressSpace, start: int, length: int, flags: int) -> None:
    """SYSCALL msync."""
    start &= ULONG_MAX
    length &= ULONG_MAX
    flags &= 0xFFFFFFFF
    if flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC):
        raise oserror(errno.EINVAL, f"msync: unknown flags {flags:#x}")
    if start & ~PAGE_MASK:
        raise oserror(errno.EINVAL, "msync: unaligned start")
    if flags & MS_ASYNC and flags & MS_SYNC:
        raise oserror(errno.EINVAL, "msync: MS_ASYNC with MS_SYNC")
    length = page_align(length)
    end = start + length
    if end > ULONG_MAX:
        raise oserror(errno.ENOMEM, "msync: the range wraps")
    if end == start:
        return
    unmapped = False
    vma = mm.tree.find(start)
    while True:
        if vma is None:
            raise oserror(errno.ENOMEM, "msync: nothing mapped at the end of the range")
        if start < vma.vm_start:
            if flags == MS_ASYNC:
                raise oserror(errno.ENOMEM, "msync: a hole (MS_ASYNC stops there)")
            start = vma.vm_start
            if start >= end:
                raise oserror(errno.ENOMEM, "msync: a hole at the end of the range")
            unmapped = True
        if flags & MS_INVALIDATE and vma.vm_flags & VM_LOCKED:
            raise oserror(errno.EBUSY, "msync: MS_INVALIDATE of locked memory")
        start = vma.vm_end
        if start >= end:
            break
        vma = mm.tree.find(start)
    if unmapped:
        raise oserror(errno.ENOMEM, "msync: the range has unmapped pages")


def sys_mincore(mm: AddressSpace, start: int, length: int) -> bytes:
    """SYSCALL mincore: one byte per page, 1 when resident."""
    start &= ULONG_MAX
    length &= ULONG_MAX
    if start & ~PAGE_MASK:
        raise oserror(errno.EINVAL, "mincore: unaligned start")
    if length > mm.task_size or start > mm.task_size - length:
        raise oserror(errno.ENOMEM, "mincore: range outside the task")
    pages = (length >> PAGE_SHIFT) + (1 if length & ~PAGE_MASK else 0)
    out = bytearray()
    addr = start
    present = mm.pages.present
    for _ in range(pages):
        if mm.tree.lookup(addr) is None:
            raise oserror(errno.ENOMEM, f"mincore: no VMA at {addr:#x}")
        out.append(1 if addr in present else 0)
        addr += PAGE_SIZE
    return bytes(out)
