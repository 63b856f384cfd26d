"""userfaultfd registration (fs/userfaultfd.c, mm/userfaultfd.c): which VMAs a userfaultfd
context watches, as the VMA layer sees it.

``mm.userfaultfd(flags, features)`` is userfaultfd(2) followed by the UFFDIO_API handshake;
it returns the context (a :class:`UserfaultfdCtx`, compared by identity). Then:

* UFFDIO_REGISTER (:func:`userfaultfd_register`) gives the VMAs of a range the mode's
  VM_UFFD_MISSING / VM_UFFD_WP / VM_UFFD_MINOR (``um`` / ``uw`` / ``ui``) and the context,
  splitting at the range's ends and merging with neighbours of the same context and flags
  (vma_modify_flags_uffd). The mode replaces an earlier one, unless the VMA already has all
  the requested bits. It returns the ioctls the range supports.
* UFFDIO_UNREGISTER (:func:`userfaultfd_unregister`) clears both (userfaultfd_clear_vma),
  merging again where it can; a VMA of another context in the range is EINVAL.
* Closing the descriptor (:func:`userfaultfd_release_all`) unregisters every VMA of that
  context.

VMAs of different contexts never merge (is_mergeable_vm_userfaultfd_ctx). fork and a move
by mremap drop the context and the flags (no UFFD_FEATURE_EVENT_FORK / EVENT_REMAP here).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.constants import (
    PAGE_MASK,
    ULONG_MAX,
    VM_DROPPABLE,
    VM_HUGETLB,
    VM_MAYWRITE,
    VM_UFFD_FLAGS,
    VM_UFFD_MINOR,
    VM_UFFD_MISSING,
    VM_UFFD_WP,
)
from vmamodel.events import VmaChanged
from vmamodel.file import ShmemVmOperations
from vmamodel.hooks import oserror
from vmamodel.hugetlb import vma_hpagesize
from vmamodel.merge import VmaMergeStruct, vma_modify
from vmamodel.vma import set_vma_uffd_ctx, vma_uffd_ctx

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma

O_NONBLOCK = 0o4000
O_CLOEXEC = 0o2000000
UFFD_USER_MODE_ONLY = 1
UFFD_SHARED_FCNTL_FLAGS = O_CLOEXEC | O_NONBLOCK

UFFD_API = 0xAA
UFFDIO_REGISTER_MODE_MISSING = 1 << 0
UFFDIO_REGISTER_MODE_WP = 1 << 1
UFFDIO_REGISTER_MODE_MINOR = 1 << 2
UFFD_API_REGISTER_MODES = (
    UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP | UFFDIO_REGISTER_MODE_MINOR
)
UFFD_FEATURE_WP_ASYNC = 1 << 15

# Bits of the ioctls mask UFFDIO_REGISTER answers with (the _UFFDIO_* numbers).
_UFFDIO_WAKE = 0x02
_UFFDIO_COPY = 0x03
_UFFDIO_ZEROPAGE = 0x04
_UFFDIO_MOVE = 0x05
_UFFDIO_WRITEPROTECT = 0x06
_UFFDIO_CONTINUE = 0x07
_UFFDIO_POISON = 0x08
UFFD_API_RANGE_IOCTLS_BASIC = (
    1 << _UFFDIO_WAKE | 1 << _UFFDIO_COPY | 1 << _UFFDIO_WRITEPROTECT | 1 << _UFFDIO_CONTINUE
    | 1 << _UFFDIO_POISON
)
UFFD_API_RANGE_IOCTLS = UFFD_API_RANGE_IOCTLS_BASIC | 1 << _UFFDIO_ZEROPAGE | 1 << _UFFDIO_MOVE


class UserfaultfdCtx:
    """struct userfaultfd_ctx: an open userfaultfd whose UFFDIO_API handshake is done."""

    __slots__ = ("features", "released")

    def __init__(self, features: int) -> None:
        self.features = features
        self.released = False

    @property
    def wp_async(self) -> bool:
        return bool(self.features & UFFD_FEATURE_WP_ASYNC)

    def __repr__(self) -> str:
        return f"UserfaultfdCtx(features={self.features:#x})"


def sys_userfaultfd(mm: AddressSpace, flags: int, features: int) -> UserfaultfdCtx:
    """userfaultfd(2) (new_userfaultfd: EINVAL for unknown flags) and UFFDIO_API with
    ``features`` (the model knows only UFFD_FEATURE_WP_ASYNC; others: EINVAL)."""
    if flags & ~(UFFD_SHARED_FCNTL_FLAGS | UFFD_USER_MODE_ONLY):
        raise oserror(errno.EINVAL, f"userfaultfd: unknown flags {flags:#x}")
    if features & ~UFFD_FEATURE_WP_ASYNC:
        raise oserror(errno.EINVAL, f"UFFDIO_API: features {features:#x} not modelled")
    return UserfaultfdCtx(features)


def vma_is_shmem(vma: Vma) -> bool:
    """vma_is_shmem(): the VMA's vm_ops are shmem's (memfd, shared anonymous, /dev/zero)."""
    return isinstance(vma.vm_ops, ShmemVmOperations)


def vma_can_userfault(vma: Vma, vm_flags: int, wp_async: bool) -> bool:
    """vma_can_userfault() (include/linux/userfaultfd_k.h): not droppable; MINOR only on
    shmem and hugetlb; WP alone with UFFD_FEATURE_WP_ASYNC on anything; otherwise anonymous,
    shmem or hugetlb memory (the host has PTE markers, so WP works on all three)."""
    vm_flags &= VM_UFFD_FLAGS
    if vma.vm_flags & VM_DROPPABLE:
        return False
    hugetlb = bool(vma.vm_flags & VM_HUGETLB)
    if vm_flags & VM_UFFD_MINOR and not (hugetlb or vma_is_shmem(vma)):
        return False
    if wp_async and vm_flags == VM_UFFD_WP:
        return True
    return vma.is_anonymous() or hugetlb or vma_is_shmem(vma)


def validate_range(mm: AddressSpace, start: int, length: int) -> int:
    """validate_range(): aligned start and length, non-empty, at or above mmap_min_addr,
    inside the task size (EINVAL). Returns the end."""
    if start & ~PAGE_MASK or length & ~PAGE_MASK or not length:
        raise oserror(errno.EINVAL, "userfaultfd: unaligned or empty range")
    if start < mm.mmap_min_addr or start >= mm.task_size or length > mm.task_size - start:
        raise oserror(errno.EINVAL, "userfaultfd: range outside the task")
    return start + length


def _vmas_in(mm: AddressSpace, start: int, end: int) -> list[Vma]:
    vmas = []
    vma = mm.tree.find(start)
    while vma is not None and vma.vm_start < end:
        vmas.append(vma)
        vma = mm.tree.find(vma.vm_end)
    return vmas


def _check_huge_start(vma: Vma, start: int) -> None:
    if vma.vm_flags & VM_HUGETLB and start & (vma_hpagesize(vma) - 1):
        raise oserror(errno.EINVAL, "userfaultfd: start not aligned to the huge page size")


def userfaultfd_register(
    mm: AddressSpace, ctx: UserfaultfdCtx, start: int, length: int, mode: int
) -> int:
    """userfaultfd_register(): check the mode, the range and every VMA in it (holes are
    allowed), then userfaultfd_register_range(). Returns the ioctls mask."""
    _check_ctx(ctx)
    start &= ULONG_MAX
    length &= ULONG_MAX
    mode &= ULONG_MAX
    if not mode or mode & ~UFFD_API_REGISTER_MODES:
        raise oserror(errno.EINVAL, f"UFFDIO_REGISTER: bad mode {mode:#x}")
    vm_flags = 0
    if mode & UFFDIO_REGISTER_MODE_MISSING:
        vm_flags |= VM_UFFD_MISSING
    if mode & UFFDIO_REGISTER_MODE_WP:
        vm_flags |= VM_UFFD_WP
    if mode & UFFDIO_REGISTER_MODE_MINOR:
        vm_flags |= VM_UFFD_MINOR
    end = validate_range(mm, start, length)
    vmas = _vmas_in(mm, start, end)
    if not vmas:
        raise oserror(errno.EINVAL, "UFFDIO_REGISTER: no VMA in the range")
    _check_huge_start(vmas[0], start)
    basic_ioctls = False
    for cur in vmas:
        if not vma_can_userfault(cur, vm_flags, ctx.wp_async):
            raise oserror(errno.EINVAL, "UFFDIO_REGISTER: a VMA userfaultfd cannot handle")
        if not cur.vm_flags & VM_MAYWRITE:
            raise oserror(errno.EPERM, "UFFDIO_REGISTER: a VMA without VM_MAYWRITE")
        if cur.vm_flags & VM_HUGETLB and cur.vm_start < end <= cur.vm_end:
            if end & (vma_hpagesize(cur) - 1):
                raise oserror(errno.EINVAL, "UFFDIO_REGISTER: end not huge-page aligned")
        owner = vma_uffd_ctx(cur)
        if owner is not None and owner is not ctx:
            raise oserror(errno.EBUSY, "UFFDIO_REGISTER: a VMA of another userfaultfd")
        if cur.vm_flags & VM_HUGETLB:
            basic_ioctls = True
    userfaultfd_register_range(mm, ctx, vm_flags, start, end)
    ioctls = UFFD_API_RANGE_IOCTLS_BASIC if basic_ioctls else UFFD_API_RANGE_IOCTLS
    if not mode & UFFDIO_REGISTER_MODE_WP:
        ioctls &= ~(1 << _UFFDIO_WRITEPROTECT)
    if not mode & UFFDIO_REGISTER_MODE_MINOR:
        ioctls &= ~(1 << _UFFDIO_CONTINUE)
    return ioctls


def vma_modify_flags_uffd(
    mm: AddressSpace, prev: Vma | None, vma: Vma, start: int, end: int, new_flags: int,
    ctx: UserfaultfdCtx | None, give_up_on_oom: bool,
) -> Vma:
    """vma_modify_flags_uffd() (mm/vma.c): merge or split with new flags and context."""
    vmg = VmaMergeStruct.from_vma(mm, prev, vma, start, end)
    vmg.flags = new_flags
    vmg.uffd_ctx = ctx
    vmg.give_up_on_oom = give_up_on_oom
    return vma_modify(vmg)


def userfaultfd_set_ctx(mm: AddressSpace, vma: Vma, ctx: UserfaultfdCtx | None, flags: int) -> None:
    """userfaultfd_set_ctx(): the context, and the VM_UFFD_* bits replaced by ``flags``."""
    set_vma_uffd_ctx(vma, ctx)
    vma.vm_flags = (vma.vm_flags & ~VM_UFFD_FLAGS) | flags
    if mm.tracer.active:
        mm.tracer.emit(VmaChanged(
            vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags, "userfaultfd"
        ))


def userfaultfd_register_range(
    mm: AddressSpace, ctx: UserfaultfdCtx, vm_flags: int, start: int, end: int
) -> None:
    """userfaultfd_register_range(): each VMA part gets the flags and the context; a VMA
    of this context that has all the bits already is left as it is."""
    vma, prev = mm.tree.find_prev(start)
    assert vma is not None
    if vma.vm_start < start:
        prev = vma
    while vma is not None and vma.vm_start < end:
        if not (vma_uffd_ctx(vma) is ctx and vma.vm_flags & vm_flags == vm_flags):
            start = max(start, vma.vm_start)
            new_flags = (vma.vm_flags & ~VM_UFFD_FLAGS) | vm_flags
            vma = vma_modify_flags_uffd(
                mm, prev, vma, start, min(end, vma.vm_end), new_flags, ctx, False
            )
            userfaultfd_set_ctx(mm, vma, ctx, vm_flags)
        prev = vma
        start = vma.vm_end
        vma = mm.tree.find(vma.vm_end)


def userfaultfd_unregister(
    mm: AddressSpace, ctx: UserfaultfdCtx, start: int, length: int
) -> None:
    """userfaultfd_unregister(): every VMA of the range must be one userfaultfd could
    handle with its current flags, and not registered with another context (EINVAL); then
    each registered part is cleared (userfaultfd_clear_vma)."""
    _check_ctx(ctx)
    start &= ULONG_MAX
    length &= ULONG_MAX
    end = validate_range(mm, start, length)
    vmas = _vmas_in(mm, start, end)
    if not vmas:
        raise oserror(errno.EINVAL, "UFFDIO_UNREGISTER: no VMA in the range")
    _check_huge_start(vmas[0], start)
    for cur in vmas:
        if not vma_can_userfault(cur, cur.vm_flags, ctx.wp_async):
            raise oserror(errno.EINVAL, "UFFDIO_UNREGISTER: a VMA userfaultfd cannot handle")
        owner = vma_uffd_ctx(cur)
        if owner is not None and owner is not ctx:
            raise oserror(errno.EINVAL, "UFFDIO_UNREGISTER: a VMA of another userfaultfd")
    vma, prev = mm.tree.find_prev(start)
    assert vma is not None
    if vma.vm_start < start:
        prev = vma
    while vma is not None and vma.vm_start < end:
        if vma_uffd_ctx(vma) is not None:
            start = max(start, vma.vm_start)
            vma = userfaultfd_clear_vma(mm, prev, vma, start, min(end, vma.vm_end))
        prev = vma
        start = vma.vm_end
        vma = mm.tree.find(vma.vm_end)


def userfaultfd_clear_vma(
    mm: AddressSpace, prev: Vma | None, vma: Vma, start: int, end: int
) -> Vma:
    """userfaultfd_clear_vma(): drop flags and context from [start, end), merging; when the
    whole VMA is cleared, running out of memory only gives up the merge."""
    whole = start == vma.vm_start and end == vma.vm_end
    vma = vma_modify_flags_uffd(
        mm, prev, vma, start, end, vma.vm_flags & ~VM_UFFD_FLAGS, None, whole
    )
    userfaultfd_set_ctx(mm, vma, None, 0)
    return vma


def userfaultfd_release_all(mm: AddressSpace, ctx: UserfaultfdCtx) -> None:
    """userfaultfd_release() / userfaultfd_release_all(): closing the descriptor clears
    every VMA of the context."""
    _check_ctx(ctx)
    ctx.released = True
    prev: Vma | None = None
    vma = mm.tree.find(0)
    while vma is not None:
        if vma_uffd_ctx(vma) is ctx:
            vma = userfaultfd_clear_vma(mm, prev, vma, vma.vm_start, vma.vm_end)
        prev = vma
        vma = mm.tree.find(vma.vm_end)


def userfaultfd_reset_ctx(mm: AddressSpace, vma: Vma) -> None:
    """userfaultfd_reset_ctx(): what mremap_userfaultfd_prep does to a moved VMA whose
    context did not ask for UFFD_FEATURE_EVENT_REMAP."""
    if vma_uffd_ctx(vma) is not None:
        userfaultfd_set_ctx(mm, vma, None, 0)


def _check_ctx(ctx: object) -> None:
    if not isinstance(ctx, UserfaultfdCtx):
        raise ValueError(f"{ctx!r} is not a userfaultfd of this address space")
    if ctx.released:
        raise oserror(errno.EBADF, "userfaultfd: the descriptor was closed")
