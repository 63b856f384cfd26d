"""mprotect(2): do_mprotect_pkey and mprotect_fixup (mm/mprotect.c)."""

from __future__ import annotations

import contextlib
import errno
from typing import TYPE_CHECKING, Final, cast

from vmamodel.accounting import (
    may_expand_vm,
    security_vm_enough_memory,
    vm_stat_reaccount,
    vm_unacct_memory,
)
from vmamodel.constants import (
    PAGE_MASK,
    PAGE_SHIFT,
    PROT_EXEC,
    PROT_GROWSDOWN,
    PROT_GROWSUP,
    PROT_READ,
    PROT_SEM,
    PROT_WRITE,
    ULONG_MAX,
    VM_ACCESS_FLAGS,
    VM_ACCOUNT,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_HUGETLB,
    VM_LOCKED,
    VM_MAYEXEC,
    VM_NORESERVE,
    VM_PKEY_MASK,
    VM_SEALED,
    VM_SHARED,
    VM_WRITE,
    page_align,
)
from vmamodel.events import VmaChanged
from vmamodel.hooks import call_mprotect_hook, oserror
from vmamodel.merge import vma_modify_flags
from vmamodel.mman import calc_vm_prot_bits
from vmamodel.pkeys import check_pkey
from vmamodel.populate import populate_vma_page_range
from vmamodel.vma import vma_set_page_prot

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.mm_types import MmStruct
    from vmamodel.vma import Vma

#: Both grows bits, and the other PROT bits mprotect(2) accepts. Final: under mypyc a static
#: each, where every name imported from vmamodel.constants is a dict lookup per use.
_PROT_GROWS: Final = PROT_GROWSDOWN | PROT_GROWSUP
_PROT_KNOWN: Final = PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM


def mprotect_fixup(
    mm: MmStruct, vma: Vma, prev: Vma | None, start: int, end: int, newflags: int
) -> Vma:
    """mprotect_fixup(): account, merge or split, then set the flags on [start, end).
    Returns the VMA that now covers the range (which may extend beyond it after a merge)."""
    oldflags = vma.vm_flags
    if oldflags & VM_SEALED:
        raise oserror(errno.EPERM, "mprotect: sealed VMA")
    if newflags == oldflags:
        return vma
    nrpages = (end - start) >> PAGE_SHIFT
    charged = 0
    if newflags & VM_WRITE:
        if not may_expand_vm(mm, newflags, nrpages) and may_expand_vm(mm, oldflags, nrpages):
            raise oserror(errno.ENOMEM, "mprotect: over RLIMIT_DATA")
        if not oldflags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE):
            charged = nrpages
            security_vm_enough_memory(mm, charged)
            newflags |= VM_ACCOUNT
    elif oldflags & VM_ACCOUNT and vma.is_anonymous() and vma.anon_vma is None:
        newflags &= ~VM_ACCOUNT
    try:
        vma, newflags = vma_modify_flags(mm, prev, vma, start, end, newflags)
    except OSError:
        vm_unacct_memory(mm, charged)
        raise
    if oldflags & VM_ACCOUNT and not newflags & VM_ACCOUNT:
        vm_unacct_memory(mm, nrpages)
    vma.vm_flags = newflags
    vma_set_page_prot(vma)
    if mm.tracer.active:
        mm.tracer.emit(
            VmaChanged(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, newflags, "mprotect")
        )
    if oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED) == VM_LOCKED and newflags & VM_WRITE:

        # The kernel ignores the result: a page it cannot fault in (past EOF, a guard
        # marker) does not fail the mprotect.
        with contextlib.suppress(OSError):
            populate_vma_page_range(mm, vma, start, end)
    vm_stat_reaccount(mm, oldflags, newflags, nrpages)
    return vma


def arch_override_mprotect_pkey(mm: MmStruct, vma: Vma, prot: int, pkey: int = -1) -> int:
    """__arch_override_mprotect_pkey(): a key from pkey_mprotect() wins; PROT_EXEC alone
    takes the execute-only key; leaving exec-only drops it back to key 0; anything else keeps
    the VMA's key. Without PKU every VMA keeps key 0."""
    if pkey != -1:
        return pkey if mm.pkeys_enabled else 0
    if prot == PROT_EXEC:
        pkey = cast("AddressSpace", mm).execute_only_pkey()
        if pkey > 0:
            return pkey
    elif (
        vma.vm_flags & VM_ACCESS_FLAGS == VM_EXEC
        and mm.pkeys_enabled
        and vma.pkey == cast("AddressSpace", mm)._execute_only_pkey
    ):
        return 0
    return vma.pkey


def do_mprotect_pkey(
    mm: MmStruct, start: int, length: int, prot: int, pkey: int = -1
) -> None:
    """do_mprotect_pkey(): validate, then change each VMA of [start, start+len) in turn.
    A hole stops the walk with ENOMEM, keeping the changes already made. ``pkey`` -1 is
    plain mprotect(2)."""
    grows = prot & _PROT_GROWS
    prot &= ~_PROT_GROWS
    if grows == _PROT_GROWS:
        raise oserror(errno.EINVAL, "mprotect: both PROT_GROWSDOWN and PROT_GROWSUP")
    if start & ~PAGE_MASK:
        raise oserror(errno.EINVAL, "mprotect: unaligned address")
    if not length:
        return
    length = page_align(length)
    end = start + length
    if length == 0 or end > ULONG_MAX or end <= start:
        raise oserror(errno.ENOMEM, "mprotect: range wraps")
    if prot & ~_PROT_KNOWN:
        raise oserror(errno.EINVAL, "mprotect: unknown PROT bits")
    if pkey != -1:
        check_pkey(cast("AddressSpace", mm), pkey)
    vma = mm.tree.find_intersection(start, end)
    if vma is None:
        raise oserror(errno.ENOMEM, "mprotect: nothing mapped in the range")
    if grows & PROT_GROWSDOWN:
        start = vma.vm_start
        if not vma.vm_flags & VM_GROWSDOWN:
            raise oserror(errno.EINVAL, "mprotect: PROT_GROWSDOWN on a VMA that does not grow")
    elif grows & PROT_GROWSUP:
        raise oserror(errno.EINVAL, "mprotect: PROT_GROWSUP on x86")
    elif vma.vm_start > start:
        raise oserror(errno.ENOMEM, "mprotect: the range starts in a hole")
    _mprotect_walk(mm, vma, start, end, prot, pkey)


def _mprotect_walk(
    mm: MmStruct, vma: Vma, start: int, end: int, prot: int, req_pkey: int = -1
) -> None:
    """do_mprotect_pkey(), its loop over the VMAs of [start, end): a hole ends it with
    ENOMEM; it stops once a VMA reaches end (the next one could only start at or above)."""
    tree = mm.tree
    prev = vma if start > vma.vm_start else tree.prev_of(vma)
    nstart, tmp = start, vma.vm_start
    read_implies_exec = mm.read_implies_exec
    cur: Vma | None = vma
    while cur is not None and cur.vm_start < end:
        vma = cur
        if vma.vm_start != tmp:
            raise oserror(errno.ENOMEM, "mprotect: hole in the range")
        vma_prot = prot
        if read_implies_exec and prot & PROT_READ and vma.vm_flags & VM_MAYEXEC:
            vma_prot |= PROT_EXEC
        pkey = arch_override_mprotect_pkey(mm, vma, vma_prot, req_pkey)
        newflags = calc_vm_prot_bits(vma_prot, pkey)
        newflags |= vma.vm_flags & ~(VM_ACCESS_FLAGS | VM_PKEY_MASK)
        if newflags & ~(newflags >> 4) & VM_ACCESS_FLAGS:
            raise oserror(errno.EACCES, "mprotect: access beyond VM_MAY* bits")
        tmp = min(vma.vm_end, end)
        call_mprotect_hook(mm, vma, nstart, tmp, newflags)
        vma = mprotect_fixup(mm, vma, prev, nstart, tmp, newflags)
        prev = vma
        tmp = nstart = vma.vm_end
        if tmp >= end:
            return
        cur = tree.next_of(vma)
    if tmp < end:
        raise oserror(errno.ENOMEM, "mprotect: the range runs past the last VMA")
