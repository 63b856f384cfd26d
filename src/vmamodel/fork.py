"""fork(2) and exit(2) as the VMA layer sees them: dup_mm/mm_init (kernel/fork.c), dup_mmap
and exit_mmap (mm/mmap.c), anon_vma_fork (mm/rmap.c) and vma_needs_copy (mm/memory.c).

The child is a new :class:`~vmamodel.mm.AddressSpace` with a copy of every VMA the parent
may pass on. Two simplifications, both invisible to the VMA layer: the commit counter is
per address space (the child starts from the parent's figure, as the system-wide counter
would read at the fork), and VMA ids, anon_vma ids and shmem inode numbers keep coming from
the parent's counters so that they stay unique across the family.
"""

from __future__ import annotations

import copy
import errno
from typing import TYPE_CHECKING

from vmamodel.accounting import security_vm_enough_memory, vm_stat_account, vm_unacct_memory
from vmamodel.constants import VM, VM_INIT_DEF_MASK, VM_LOCKED_MASK, VM_UFFD_FLAGS
from vmamodel.events import Tracer
from vmamodel.hooks import maybe_inject, oserror, vma_open
from vmamodel.inject import Injector
from vmamodel.mm_types import MM_STRUCT_FIELDS, MmStruct
from vmamodel.munmap import remove_vma
from vmamodel.pagetable import PageTable
from vmamodel.tree import VmaTree
from vmamodel.vma import AnonVma, Vma, vma_dup

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace

#: VMAs whose page tables hold what a fault cannot rebuild: they are copied at fork even
#: without an anon_vma (VM_COPY_ON_FORK; guard markers live only in the page tables).
VM_COPY_ON_FORK = VM.PFNMAP | VM.MIXEDMAP | VM.UFFD_WP | VM.MAYBE_GUARD


def mm_init(oldmm: AddressSpace) -> AddressSpace:
    """dup_mm(): a byte copy of the parent's mm_struct, then mm_init(): no VMAs, nothing
    locked, and of def_flags only VM_INIT_DEF_MASK survives (mlockall(MCL_FUTURE) does not
    pass to the child). Limits, the break, pkeys and the layout are inherited."""
    cls = type(oldmm)
    mm = cls.__new__(cls)
    # A subclass without __slots__ keeps what it adds in a __dict__: copied the same way.
    for name in mm_struct_fields(cls) + tuple(getattr(oldmm, "__dict__", ())):
        value = getattr(oldmm, name)
        setattr(mm, name, copy.copy(value) if isinstance(value, (list, dict, set)) else value)
    mm.tree = VmaTree()
    mm.pages = PageTable()
    mm.map_count = 0
    mm.locked_vm = 0
    mm.def_flags = oldmm.def_flags & VM_INIT_DEF_MASK
    mm.vm_policies = {}
    mm.uffd_ctxs = {}
    mm.aio_contexts = {}  # mm_init(): no ioctx table; the ring VMAs are copied all the same
    mm.tracer = Tracer()
    mm.injector = Injector()
    return mm


def mm_struct_fields(cls: type[AddressSpace]) -> tuple[str, ...]:
    """Every field of an AddressSpace: MmStruct's (a compiled class lists no ``__slots__``)
    and the ``__slots__`` of the interpreted classes above it (one slot may be a str;
    ``__dict__`` and ``__weakref__`` are no fields)."""
    names = list(MM_STRUCT_FIELDS)
    for klass in cls.__mro__:
        if klass is not MmStruct:
            slots = vars(klass).get("__slots__", ())
            names.extend((slots,) if isinstance(slots, str) else slots)
    return tuple(name for name in names if name not in ("__dict__", "__weakref__"))


def dup_rare_to_child(oldmm: AddressSpace, mm: AddressSpace, tmp: Vma) -> None:
    """vma_dup_policy() and dup_userfaultfd() for a copy that vm_area_dup() put in the
    parent's tables: the policy moves to the child's; the userfaultfd context is dropped with
    the VM_UFFD_* flags (no context asks for UFFD_FEATURE_EVENT_FORK in the model)."""
    policy = oldmm.vm_policies.pop(tmp, None)
    if policy is not None:
        mm.vm_policies[tmp] = policy
    if oldmm.uffd_ctxs.pop(tmp, None) is not None:
        tmp.vm_flags &= ~VM_UFFD_FLAGS


def anon_vma_fork(oldmm: AddressSpace, vma: Vma, pvma: Vma) -> None:
    """anon_vma_fork(): a copy of a faulted VMA gets an anon_vma of its own, chained below the
    parent's, so its chain has more than one entry (a fork child, which limits merging);
    a copy of an unfaulted VMA has none."""
    if oldmm.injector.armed:
        maybe_inject(oldmm, "anon_vma_fork")
    if pvma.anon_vma is None:
        vma.anon_vma = None
        vma.fork_child = False
        return
    vma.anon_vma = AnonVma(oldmm.next_anon_vma_id())
    vma.fork_child = True


def vma_needs_copy(vma: Vma, pvma: Vma) -> bool:
    """vma_needs_copy(): page tables are copied only where a later fault could not refill
    them; elsewhere the child starts with none and faults them in again."""
    return bool(vma.vm_flags & VM_COPY_ON_FORK) or pvma.anon_vma is not None


def copy_page_range(oldmm: AddressSpace, mm: AddressSpace, vma: Vma, pvma: Vma) -> None:
    """copy_page_range(): the child sees the parent's pages of the range (copy on write) and
    its guard markers."""
    if oldmm.injector.armed:
        maybe_inject(oldmm, "copy_page_range")
    if not vma_needs_copy(vma, pvma):
        return
    start, end = vma.vm_start, vma.vm_end
    src, dst = oldmm.pages, mm.pages
    # pages_in costs the range's pages, not every page of the parent (once per VMA).
    dst.present.update(src.present.pages_in(start, end))
    dst.anon.update(src.anon.pages_in(start, end))
    dst.guards.update(src.guards.pages_in(start, end))


def _dup_vma(oldmm: AddressSpace, mm: AddressSpace, mpnt: Vma) -> int:
    """One VMA of dup_mmap(): charge, copy, give it its anon_vma, link it, ->open, copy the
    page tables. Returns the pages charged; raises with the charge returned if nothing was
    linked, or with the copy linked (so the teardown un-charges it)."""
    charge = 0
    if mpnt.vm_flags & VM.ACCOUNT:
        security_vm_enough_memory(mm, mpnt.pages)
        charge = mpnt.pages
    try:
        if oldmm.injector.armed:
            maybe_inject(oldmm, "fork_vma_dup")
        tmp = vma_dup(oldmm, mpnt)
        tmp.vm_mm = mm
        if oldmm.vm_policies or oldmm.uffd_ctxs:
            dup_rare_to_child(oldmm, mm, tmp)
        if tmp.vm_flags & VM.WIPEONFORK:
            tmp.anon_vma = None
            tmp.fork_child = False
        else:
            anon_vma_fork(oldmm, tmp, mpnt)
    except OSError:
        vm_unacct_memory(mm, charge)
        raise
    tmp.vm_flags &= ~VM_LOCKED_MASK
    mm.tree.insert(tmp)
    mm.map_count += 1
    vma_open(oldmm, tmp)
    if not tmp.vm_flags & VM.WIPEONFORK:
        copy_page_range(oldmm, mm, tmp, mpnt)
    return charge


def tear_down_vmas(oldmm: AddressSpace, mm: AddressSpace, reason: str) -> int:
    """tear_down_vmas(): ->close and free every VMA in address order. Returns the VM_ACCOUNT
    pages to un-charge."""
    nr_accounted = 0
    for vma in list(mm.tree):
        if vma.vm_flags & VM.ACCOUNT:
            nr_accounted += vma.pages
        mm.tree.remove(vma)
        remove_vma(oldmm, vma, reason)
    mm.map_count = 0
    return nr_accounted


def dup_mmap(oldmm: AddressSpace) -> AddressSpace:
    """dup_mm() / dup_mmap(): the child's address space. VM_DONTCOPY VMAs are left out (and
    out of its statistics); VM_WIPEONFORK ones are copied empty; VM_LOCKED and
    VM_LOCKONFAULT are cleared. If a copy fails, the copies made so far are closed and
    freed, their charges returned, and fork fails with ENOMEM; the parent is untouched."""
    mm = mm_init(oldmm)
    # The copy is made under the caller's injector: its failure points belong to this fork.
    mm.injector = oldmm.injector
    try:
        if oldmm.injector.armed:
            maybe_inject(oldmm, "mt_dup")
        for mpnt in oldmm.tree:
            if mpnt.vm_flags & VM.DONTCOPY:
                vm_stat_account(mm, mpnt.vm_flags, -mpnt.pages)
                continue
            _dup_vma(oldmm, mm, mpnt)
    except OSError as exc:
        vm_unacct_memory(mm, tear_down_vmas(oldmm, mm, "failed fork"))
        raise oserror(errno.ENOMEM, f"fork: {exc.strerror}") from exc
    finally:
        mm.injector = Injector()
    return mm


def exit_mmap(mm: AddressSpace) -> None:
    """exit_mmap(): zap every page, then ->close and free every VMA in address order and
    return the commit charge. The address space is left empty."""
    mm.pages.zap(0, mm.task_size)
    vm_unacct_memory(mm, tear_down_vmas(mm, mm, "exit"))
    mm.total_vm = mm.locked_vm = mm.data_vm = mm.exec_vm = mm.stack_vm = 0
