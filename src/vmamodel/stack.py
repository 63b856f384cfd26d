"""Stack growth on a fault below a VM_GROWSDOWN VMA (mm/mmap.c expand_downwards)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmamodel.access_fault import AccessFault
from vmamodel.accounting import may_expand_vm, security_vm_enough_memory, vm_stat_account
from vmamodel.constants import PAGE_MASK, PAGE_SHIFT, VM_ACCESS_FLAGS, VM_GROWSDOWN, VM_LOCKED
from vmamodel.events import VmaChanged

if TYPE_CHECKING:
    from vmamodel.mm_types import MmStruct
    from vmamodel.vma import Vma


def _segv(detail: str) -> OSError:
    return AccessFault("SIGSEGV", detail)


def acct_stack_growth(mm: MmStruct, vma: Vma, size: int, grow: int) -> None:
    """acct_stack_growth(): RLIMIT_STACK, RLIMIT_AS, RLIMIT_MEMLOCK and the commit charge."""
    if size > mm.rlimit_stack:
        raise _segv("stack growth past RLIMIT_STACK")
    if not may_expand_vm(mm, vma.vm_flags, grow):
        raise _segv("stack growth past RLIMIT_AS")
    if vma.vm_flags & VM_LOCKED and not mm.cap_ipc_lock:
        if (mm.locked_vm + grow) << PAGE_SHIFT > mm.rlimit_memlock:
            raise _segv("stack growth past RLIMIT_MEMLOCK")
    try:
        security_vm_enough_memory(mm, grow)
    except OSError as exc:
        raise _segv("stack growth: out of memory") from exc


def expand_downwards(mm: MmStruct, vma: Vma, addr: int) -> None:
    """expand_downwards(): grow ``vma`` down to ``addr``; the guard gap above a non-stack
    accessible VMA below must stay free."""
    # Not at module level: fault.py imports this module (the fault path grows stacks).
    from vmamodel.fault import anon_vma_prepare

    if not vma.vm_flags & VM_GROWSDOWN:
        raise _segv(f"no mapping at {addr:#x}")
    addr &= PAGE_MASK
    if addr < mm.mmap_min_addr:
        raise _segv("stack growth below mmap_min_addr")
    prev = mm.tree.prev_of(vma)
    if (
        prev is not None
        and not prev.vm_flags & VM_GROWSDOWN
        and prev.vm_flags & VM_ACCESS_FLAGS
        and addr - prev.vm_end < mm.stack_guard_gap
    ):
        raise _segv("stack growth into the guard gap")
    anon_vma_prepare(mm, vma)
    if addr >= vma.vm_start:
        return
    grow = (vma.vm_start - addr) >> PAGE_SHIFT
    if grow > vma.vm_pgoff:
        raise _segv("stack growth below page offset 0")
    acct_stack_growth(mm, vma, vma.vm_end - addr, grow)
    if vma.vm_flags & VM_LOCKED:
        mm.locked_vm += grow
    vm_stat_account(mm, vma.vm_flags, grow)
    mm.tree.set_range(vma, addr, vma.vm_end, vma.vm_pgoff - grow)
    if mm.tracer.active:
        mm.tracer.emit(
            VmaChanged(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags, "stack growth")
        )


def expand_stack_for_fault(mm: MmStruct, vma: Vma, addr: int) -> Vma:
    """lock_mm_and_find_vma(): a fault below a VM_GROWSDOWN VMA grows it."""
    expand_downwards(mm, vma, addr)
    return vma
