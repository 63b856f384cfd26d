"""mlock(2), mlock2(2), munlock(2), mlockall(2) and munlockall(2) (mm/mlock.c).

Locking is a flag change: VM_LOCKED (and VM_LOCKONFAULT for MLOCK_ONFAULT / MCL_ONFAULT) is
set or cleared on the range, splitting and merging through :func:`vma_modify_flags`, with
``mm.locked_vm`` following. VMAs that cannot be locked (VM_SPECIAL, hugetlb, droppable) are
skipped silently. After the flags are set, mlock and mlockall(MCL_CURRENT) fault the range
in (``__mm_populate``), which gives private writable VMAs their anon_vma; the flags stay set
when that fails (mlock then reports ENOMEM).
"""

from __future__ import annotations

import contextlib
import errno
from typing import TYPE_CHECKING

from vmamodel.constants import (
    MCL_CURRENT,
    MCL_FUTURE,
    MCL_ONFAULT,
    MLOCK_ONFAULT,
    PAGE_MASK,
    PAGE_SHIFT,
    TASK_SIZE,
    ULONG_MAX,
    VM,
    VM_LOCKED_MASK,
    page_align,
)
from vmamodel.events import VmaChanged
from vmamodel.hooks import oserror
from vmamodel.madvise import c_int
from vmamodel.merge import vma_modify_flags
from vmamodel.mmap import vma_supports_mlock
from vmamodel.populate import mm_populate

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma



def page_range(start: int, length: int) -> tuple[int, int]:
    """The mlock family's rounding: start down to its page, ``len + offset`` up to a page,
    in 64-bit arithmetic (a huge length wraps to a small one, as size_t does)."""
    start &= ULONG_MAX
    length = ((length & ULONG_MAX) + (start & ~PAGE_MASK)) & ULONG_MAX
    length = page_align(length)
    return start & PAGE_MASK, length


def mlock_fixup(
    mm: AddressSpace, vma: Vma, prev: Vma | None, start: int, end: int, newflags: int
) -> Vma:
    """mlock_fixup(): set the lock bits on [start, end) of ``vma`` (merging or splitting)
    and account locked_vm. Unchanged flags and VMAs that cannot be locked are left alone
    without an error. Returns the VMA that now covers the range."""
    oldflags = vma.vm_flags
    if newflags == oldflags or not vma_supports_mlock(vma):
        return vma
    vma, newflags = vma_modify_flags(mm, prev, vma, start, end, newflags)
    nr_pages = (end - start) >> PAGE_SHIFT
    if not newflags & VM.LOCKED:
        nr_pages = -nr_pages
    elif oldflags & VM.LOCKED:
        nr_pages = 0
    mm.locked_vm += nr_pages
    vma.vm_flags = newflags
    if mm.tracer.active:
        mm.tracer.emit(
            VmaChanged(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, newflags, "mlock")
        )
    return vma


def apply_vma_lock_flags(mm: AddressSpace, start: int, length: int, flags: int) -> None:
    """apply_vma_lock_flags(): replace the lock bits of every VMA of [start, start+len) by
    ``flags``. A range that does not start in a VMA fails with ENOMEM and changes nothing; a
    later hole stops the walk with ENOMEM, keeping the changes made before it."""
    end = start + length
    if end > ULONG_MAX:
        raise oserror(errno.EINVAL, "mlock: range wraps")
    if end == start:
        return
    vma = mm.tree.lookup(start)
    if vma is None:
        raise oserror(errno.ENOMEM, "mlock: nothing mapped at the start of the range")
    prev = vma if start > vma.vm_start else mm.tree.prev_of(vma)
    nstart, tmp = start, vma.vm_start
    cur: Vma | None = vma
    while cur is not None and cur.vm_start < end:
        if cur.vm_start != tmp:
            raise oserror(errno.ENOMEM, "mlock: hole in the range")
        newflags = (cur.vm_flags & ~VM_LOCKED_MASK) | flags
        tmp = min(cur.vm_end, end)
        cur = mlock_fixup(mm, cur, prev, nstart, tmp, newflags)
        prev = cur
        tmp = nstart = cur.vm_end
        cur = mm.tree.next_of(cur)
    if tmp < end:
        raise oserror(errno.ENOMEM, "mlock: the range runs past the last VMA")


def count_mm_mlocked_page_nr(mm: AddressSpace, start: int, length: int) -> int:
    """count_mm_mlocked_page_nr(): pages of [start, start+len) already in VM_LOCKED VMAs
    (VM_LOCKONFAULT ones included)."""
    end = min(start + length, ULONG_MAX)
    count = 0
    for vma in mm.tree.range(start, end):
        if vma.vm_flags & VM.LOCKED:
            count += min(end, vma.vm_end) - max(start, vma.vm_start)
    return count >> PAGE_SHIFT


def mlock_posix_error(exc: OSError) -> OSError:
    """__mlock_posix_error_return(): a failed populate is ENOMEM (EFAULT) or EAGAIN (ENOMEM)."""
    translated = {errno.EFAULT: errno.ENOMEM, errno.ENOMEM: errno.EAGAIN}.get(exc.errno or 0)
    if translated is None:
        return exc
    return oserror(translated, f"mlock: populate failed ({exc.strerror})")


def do_mlock(mm: AddressSpace, start: int, length: int, flags: int) -> None:
    """do_mlock(): ``flags`` are mlock2's (0 or MLOCK_ONFAULT). EPERM without mlock
    permission; ENOMEM over RLIMIT_MEMLOCK (unless CAP_IPC_LOCK; pages already locked in the
    range do not count twice); set the lock bits; then fault the range in."""
    if not mm.can_do_mlock():
        raise oserror(errno.EPERM, "mlock: neither CAP_IPC_LOCK nor RLIMIT_MEMLOCK")
    vm_flags = VM.LOCKED | (VM.LOCKONFAULT if flags & MLOCK_ONFAULT else 0)
    start, length = page_range(start, length)
    lock_limit = mm.rlimit_memlock >> PAGE_SHIFT
    locked = (length >> PAGE_SHIFT) + mm.locked_vm
    if locked > lock_limit and not mm.cap_ipc_lock:
        locked -= count_mm_mlocked_page_nr(mm, start, length)
    if locked > lock_limit and not mm.cap_ipc_lock:
        raise oserror(errno.ENOMEM, "mlock: over RLIMIT_MEMLOCK")
    apply_vma_lock_flags(mm, start, length, vm_flags)
    try:
        mm_populate(mm, start, length, ignore_errors=False)
    except OSError as exc:
        raise mlock_posix_error(exc) from exc


def sys_mlock2(mm: AddressSpace, start: int, length: int, flags: int) -> None:
    """SYSCALL mlock2: flags other than MLOCK_ONFAULT are EINVAL; MLOCK_ONFAULT adds
    VM_LOCKONFAULT (no populate: pages lock as they fault)."""
    flags = c_int(flags)
    if flags & ~MLOCK_ONFAULT:
        raise oserror(errno.EINVAL, "mlock2: unknown flags")
    do_mlock(mm, start, length, flags)


def do_munlock(mm: AddressSpace, start: int, length: int) -> None:
    """SYSCALL munlock: clear the lock bits; no limit check, no populate."""
    start, length = page_range(start, length)
    apply_vma_lock_flags(mm, start, length, 0)


def apply_mlockall_flags(mm: AddressSpace, flags: int) -> None:
    """apply_mlockall_flags(): MCL_FUTURE sets the lock bits in mm->def_flags (anything else
    clears them); MCL_CURRENT sets them on every VMA and its absence clears them. A failure
    on one VMA is ignored."""
    mm.def_flags &= ~VM_LOCKED_MASK
    onfault = VM.LOCKONFAULT if flags & MCL_ONFAULT else 0
    if flags & MCL_FUTURE:
        mm.def_flags |= VM.LOCKED | onfault
        if not flags & MCL_CURRENT:
            return
    to_add = VM.LOCKED | onfault if flags & MCL_CURRENT else 0
    prev: Vma | None = None
    vma = mm.tree.find(0)
    while vma is not None:
        newflags = (vma.vm_flags & ~VM_LOCKED_MASK) | to_add
        with contextlib.suppress(OSError):
            vma = mlock_fixup(mm, vma, prev, vma.vm_start, vma.vm_end, newflags)
        prev = vma
        vma = mm.tree.next_of(vma)


def do_mlockall(mm: AddressSpace, flags: int) -> None:
    """SYSCALL mlockall: EINVAL for no flags, unknown flags or MCL_ONFAULT alone; EPERM
    without mlock permission; ENOMEM for MCL_CURRENT when total_vm exceeds RLIMIT_MEMLOCK
    (unless CAP_IPC_LOCK). MCL_CURRENT then faults everything in, ignoring errors."""
    flags = c_int(flags)
    if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
        raise oserror(errno.EINVAL, "mlockall: bad flags")
    if not mm.can_do_mlock():
        raise oserror(errno.EPERM, "mlockall: neither CAP_IPC_LOCK nor RLIMIT_MEMLOCK")
    lock_limit = mm.rlimit_memlock >> PAGE_SHIFT
    if flags & MCL_CURRENT and mm.total_vm > lock_limit and not mm.cap_ipc_lock:
        raise oserror(errno.ENOMEM, "mlockall: total_vm over RLIMIT_MEMLOCK")
    apply_mlockall_flags(mm, flags)
    if flags & MCL_CURRENT:
        mm_populate(mm, 0, TASK_SIZE, ignore_errors=True)


def do_munlockall(mm: AddressSpace) -> None:
    """SYSCALL munlockall: clear the lock bits everywhere, and in def_flags."""
    apply_mlockall_flags(mm, 0)
