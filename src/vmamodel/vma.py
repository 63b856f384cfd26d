"""struct vm_area_struct, struct anon_vma, struct vm_area_desc, and splitting (mm/vma.c)."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from vmamodel.constants import (
    PAGE_SHIFT,
    PGPROT_CACHE_MASK,
    PGPROT_UC,
    PGPROT_WC,
    VM,
    VM_EXEC,
    VM_MAYWRITE,
    VM_PKEY_MASK,
    VM_PKEY_SHIFT,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
)
from vmamodel.events import Split
from vmamodel.file import File, VmOperations
from vmamodel.hooks import call_may_split, maybe_inject, oserror, vma_open
from vmamodel.mm_types import next_vma_id

if TYPE_CHECKING:
    from vmamodel.mm_types import MmStruct
    from vmamodel.mmap_action import MmapAction


class AnonVma:
    """struct anon_vma. Only its identity matters to the VMA layer: merges compare it."""

    __slots__ = ("id",)

    def __init__(self, ident: int) -> None:
        self.id = ident

    def __repr__(self) -> str:
        return f"AnonVma#{self.id}"


class Vma:
    """struct vm_area_struct: the half-open range [vm_start, vm_end) and its attributes.

    ``fork_child`` stands for an anon_vma_chain with more than one entry
    (vma_is_fork_child()): the VMA was copied by fork after its parent had faulted.
    """

    __slots__ = (
        "anon_name",
        "anon_vma",
        "detached",
        "fork_child",
        "id",
        "vm_end",
        "vm_file",
        "vm_flags",
        "vm_mm",
        "vm_ops",
        "vm_page_prot",
        "vm_pgoff",
        "vm_private_data",
        "vm_start",
    )

    # The memory policy (vma->vm_policy) and the userfaultfd context (vm_userfaultfd_ctx)
    # are rare: they live in the mm's side tables (mm.vm_policies, mm.uffd_ctxs), read
    # through vma_policy() and vma_uffd_ctx(), so that a VMA without them costs no slot.

    def __init__(
        self,
        mm: MmStruct | None,
        ident: int,
        vm_start: int,
        vm_end: int,
        vm_pgoff: int,
        vm_flags: int,
        vm_file: File | None = None,
        vm_ops: VmOperations | None = None,
        vm_page_prot: int = -1,
    ) -> None:
        """``vm_page_prot`` -1: the one vm_flags give (vm_get_page_prot()); a caller that
        has it (mmap's map->page_prot, a copy's) passes it, so it is not computed twice."""
        # The order of the first stores is the compiled object's field order: vm_start and
        # vm_end first, in the cache line of the object's header (which the type check of
        # every read through a list[Vma] touches), so that a tree search probing a VMA
        # usually reads one line of it, not two (see docs/speed.md, round 6).
        self.vm_start = vm_start
        self.vm_end = vm_end
        self.vm_flags = vm_flags
        self.vm_pgoff = vm_pgoff
        self.vm_mm = mm
        self.id = ident
        self.vm_file = vm_file
        self.vm_ops = vm_ops
        self.vm_page_prot = vm_get_page_prot(vm_flags) if vm_page_prot < 0 else vm_page_prot
        self.vm_private_data: Any = None
        self.anon_vma: AnonVma | None = None
        self.anon_name: str | None = None  # struct anon_vma_name (CONFIG_ANON_VMA_NAME)
        self.fork_child = self.detached = False

    @property
    def pages(self) -> int:
        return (self.vm_end - self.vm_start) >> PAGE_SHIFT

    def is_anonymous(self) -> bool:
        """vma_is_anonymous(): no vm_ops at all."""
        return self.vm_ops is None

    def is_shared_maywrite(self) -> bool:
        return self.vm_flags & (VM_SHARED | VM_MAYWRITE) == VM_SHARED | VM_MAYWRITE

    @property
    def pkey(self) -> int:
        """vma_pkey(): the protection key in vm_flags bits 32-35."""
        return (self.vm_flags & VM_PKEY_MASK) >> VM_PKEY_SHIFT

    def has_close(self) -> bool:
        return self.vm_ops is not None and self.vm_ops.close is not None

    def __repr__(self) -> str:
        return (
            f"Vma#{self.id}[{self.vm_start:#x}-{self.vm_end:#x} pg={self.vm_pgoff:#x} "
            f"{VM(self.vm_flags)!r} file={self.vm_file!r} anon={self.anon_vma!r}]"
        )


#: The vm_flags that index protection_map (vm_get_page_prot()).
VM_PAGE_PROT_BITS: Final = VM_READ | VM_WRITE | VM_EXEC | VM_SHARED


def vm_get_page_prot(vm_flags: int) -> int:
    """vm_get_page_prot(): the protection_map index the page protection derives from."""
    return vm_flags & VM_PAGE_PROT_BITS


def pgprot_noncached(prot: int) -> int:
    """pgprot_noncached() (arch/x86/include/asm/pgtable.h): cache mode UC-."""
    return (prot & ~PGPROT_CACHE_MASK) | PGPROT_UC


def pgprot_writecombine(prot: int) -> int:
    """pgprot_writecombine() (arch/x86/mm/pat/memtype.c): cache mode WC."""
    return (prot & ~PGPROT_CACHE_MASK) | PGPROT_WC


def pgprot_decrypted(prot: int) -> int:
    """pgprot_decrypted(): clears the SME bit, which the model does not carry (identity)."""
    return prot


def vma_set_page_prot(vma: Vma) -> None:
    """vma_set_page_prot() (mm/mmap.c): the protection that vm_flags give, keeping the page
    cache mode a driver chose (vm_pgprot_modify() keeps _PAGE_CACHE_MASK), so a non-cached
    or write-combining device mapping stays so after mmap completes or mprotect."""
    cache_mode = vma.vm_page_prot & PGPROT_CACHE_MASK
    # vm_get_page_prot(), written out: this runs on every mmap and mprotect.
    vma.vm_page_prot = vma.vm_flags & VM_PAGE_PROT_BITS | cache_mode


def vma_dup(mm: MmStruct, vma: Vma) -> Vma:
    """vm_area_dup(): a copy of every field; the caller adjusts range and references."""
    new = Vma(
        vma.vm_mm, next_vma_id(mm), vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags,
        vma.vm_file, vma.vm_ops, vma.vm_page_prot,
    )
    new.vm_private_data = vma.vm_private_data
    new.anon_vma = vma.anon_vma
    new.fork_child = vma.fork_child
    new.anon_name = vma.anon_name
    owner = vma.vm_mm
    if owner is not None and (owner.vm_policies or owner.uffd_ctxs):
        dup_rare_fields(owner, vma, new)
    return new


def vma_policy(vma: Vma) -> Any:
    """vma_policy(): the VMA's struct mempolicy (a ``Mempolicy``), None for the default."""
    owner = vma.vm_mm
    if owner is None or not owner.vm_policies:
        return None
    return owner.vm_policies.get(vma)


def vma_uffd_ctx(vma: Vma) -> Any:
    """vma->vm_userfaultfd_ctx.ctx: the registered userfaultfd context, or None."""
    owner = vma.vm_mm
    if owner is None or not owner.uffd_ctxs:
        return None
    return owner.uffd_ctxs.get(vma)


def set_vma_policy(vma: Vma, policy: Any) -> None:
    """vma->vm_policy = policy (None: the default policy)."""
    assert vma.vm_mm is not None
    table = vma.vm_mm.vm_policies
    if policy is None:
        table.pop(vma, None)
    else:
        table[vma] = policy


def set_vma_uffd_ctx(vma: Vma, ctx: Any) -> None:
    """vma->vm_userfaultfd_ctx.ctx = ctx (None: NULL_VM_UFFD_CTX)."""
    assert vma.vm_mm is not None
    table = vma.vm_mm.uffd_ctxs
    if ctx is None:
        table.pop(vma, None)
    else:
        table[vma] = ctx


def dup_rare_fields(mm: MmStruct, src: Vma, dst: Vma) -> None:
    """vma_dup_policy() and the copy of vm_userfaultfd_ctx in vm_area_dup()."""
    policy = mm.vm_policies.get(src)
    if policy is not None:
        mm.vm_policies[dst] = policy
    ctx = mm.uffd_ctxs.get(src)
    if ctx is not None:
        mm.uffd_ctxs[dst] = ctx


def drop_rare_fields(mm: MmStruct, vma: Vma) -> None:
    """mpol_put(vma_policy(vma)) and the userfaultfd reference of a freed VMA."""
    if mm.vm_policies:
        mm.vm_policies.pop(vma, None)
    if mm.uffd_ctxs:
        mm.uffd_ctxs.pop(vma, None)


@dataclass(frozen=True, slots=True)
class VmaView:
    """A read-only snapshot of one VMA, as ``mm.vmas()`` returns it.

    ``anon_vma`` is the anon_vma's identity (an int) or None when unfaulted. The host backend
    cannot see anon_vmas or the pgoff of anonymous VMAs and reports ``None`` for them.
    """

    vm_start: int
    vm_end: int
    vm_pgoff: int | None
    vm_flags: VM
    file: File | None
    anon_vma: int | None
    name: str = ""


class VmAreaDesc:
    """struct vm_area_desc: what ``f_op->mmap_prepare`` sees before any VMA exists.

    Writable by the hook: ``pgoff``, ``vm_file``, ``vm_flags``, ``page_prot``, ``vm_ops``,
    ``private_data`` and (v4 and later) ``action``. ``mm`` and ``file`` are read-only.
    ``start`` and ``end`` may be assigned, but the kernel never reads them back
    (call_mmap_prepare), so a change is ignored and reported as a warning event.
    """

    __slots__ = (
        "_file",
        "_mm",
        "action",
        "end",
        "page_prot",
        "pgoff",
        "private_data",
        "start",
        "vm_file",
        "vm_flags",
        "vm_ops",
    )

    def __init__(
        self,
        mm: MmStruct,
        file: File,
        start: int,
        end: int,
        pgoff: int,
        vm_file: File | None,
        vm_flags: int,
        page_prot: int,
        action: MmapAction,
        vm_ops: VmOperations | None = None,
        private_data: Any = None,
    ) -> None:
        self._mm = mm
        self._file = file
        self.start = start
        self.end = end
        self.pgoff = pgoff
        self.vm_file = vm_file
        self.vm_flags = vm_flags
        self.page_prot = page_prot
        self.vm_ops = vm_ops
        self.private_data = private_data
        self.action = action

    @property
    def mm(self) -> MmStruct:
        return self._mm

    @property
    def file(self) -> File:
        return self._file

    @property
    def pages(self) -> int:
        """vma_desc_pages()."""
        return (self.end - self.start) >> PAGE_SHIFT

    @property
    def size(self) -> int:
        """vma_desc_size()."""
        return self.end - self.start

    def __repr__(self) -> str:
        return (
            f"VmAreaDesc[{self.start:#x}-{self.end:#x} pg={self.pgoff:#x} "
            f"{VM(self.vm_flags)!r} ops={self.vm_ops!r} action={self.action!r}]"
        )


def __split_vma(mm: MmStruct, vma: Vma, addr: int, new_below: bool) -> Vma:
    """__split_vma() (mm/vma.c): cut ``vma`` at ``addr``; return the new piece.

    The new piece is ``[vm_start, addr)`` when ``new_below``, else ``[addr, vm_end)``; the
    original object keeps the other part. ``may_split`` can refuse; ``open`` runs on the new
    piece before it is inserted. No map_count check here (see :func:`split_vma`).
    """
    call_may_split(mm, vma, addr)
    if mm.injector.armed:
        maybe_inject(mm, "split_alloc")
    new = vma_dup(mm, vma)
    delta = (addr - vma.vm_start) >> PAGE_SHIFT
    if new_below:
        new.vm_end = addr
    else:
        new.vm_start = addr
        new.vm_pgoff += delta
    vma_open(mm, new)
    tree = mm.tree
    if new_below:
        tree.set_range(vma, addr, vma.vm_end, vma.vm_pgoff + delta)
    else:
        tree.set_range(vma, vma.vm_start, addr, vma.vm_pgoff)
    tree.insert(new, beside=vma)
    mm.map_count += 1
    if mm.tracer.active:
        mm.tracer.emit(Split(vma.id, addr, new_below, new.id))
    return new


def split_vma(mm: MmStruct, vma: Vma, addr: int, new_below: bool) -> Vma:
    """split_vma() (mm/vma.c): refuse with ENOMEM when map_count is at the limit."""
    if mm.map_count >= mm.max_map_count:
        raise oserror(errno.ENOMEM, "split_vma: map_count at max_map_count")
    if mm.injector.armed:
        maybe_inject(mm, "max_map_count")
    return __split_vma(mm, vma, addr, new_below)
