"""The compat layer: legacy ``f_op->mmap`` paths meeting ``mmap_prepare`` hooks.

vfs_mmap() (include/linux/fs.h) is what a legacy ``.mmap`` path uses - mmap_file() in
__mmap_new_file_vma, and stacked drivers forwarding to an inner file. When the inner file
has ``mmap_prepare``, compat_vma_mmap() (mm/util.c) builds a desc from the VMA, runs the hook,
and applies the result to the VMA, which is not yet in the tree. In v4 and later it also
prepares and completes the action right there and calls ``vm_ops->mapped``.

Per profile (see :mod:`vmamodel.profiles`):

- 6.18: the desc starts with vm_ops None; flags from the hook are only OR-ed into the VMA.
- v4: vm_ops None at the start; flags replaced; a failure after the hook unmaps the range;
  vfs_mmap rejects a legacy ``.mmap`` that left ``mapped`` set (__vma_check_mmap_hook).
- mainline: desc.vm_ops pre-filled from the VMA; no unmap on a compat failure; no check.
"""

from __future__ import annotations

import errno as E
from collections.abc import Callable
from typing import TYPE_CHECKING

from vmamodel.events import WarnOn
from vmamodel.file import File
from vmamodel.hooks import (
    call_hook,
    check_desc,
    check_vma,
    ops_owner,
    oserror,
    refuse_unbuildable,
)
from vmamodel.mmap_action import (
    MmapAction,
    mmap_action_complete,
    mmap_action_prepare,
    refuse_mapped_without_profile,
)
from vmamodel.vma import VmAreaDesc

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma


def call_prepare_hook(
    mm: AddressSpace,
    hook: Callable[[VmAreaDesc], None],
    owner: str,
    desc: VmAreaDesc,
    vma: Vma | None = None,
) -> None:
    """Run an mmap_prepare-style hook on ``desc`` with tracing and the "mmap_prepare"
    failure point (which fails the hook before it runs). Raises OSError.

    Used by compat_vma_mmap() and by drivers whose legacy ``.mmap`` calls a nested
    prepare-style callback of their own (hv vmbus ring, uio).
    """
    error = call_hook(
        mm, "mmap_prepare", owner, vma.id if vma is not None else None,
        lambda: _desc_args(desc), lambda: hook(desc), "mmap_prepare",
        lambda: check_desc(desc),
    )
    if error is not None:
        raise error


def _desc_args(desc: VmAreaDesc) -> tuple[int, int, int, int]:
    """What a traced mmap_prepare call shows of its desc (as the normal path does)."""
    return desc.start, desc.end, desc.pgoff, int(desc.vm_flags)


def compat_set_desc_from_vma(mm: AddressSpace, file: File, vma: Vma) -> VmAreaDesc:
    """compat_set_desc_from_vma() (mm/util.c, exported by v4 17/21).

    Everything starts zeroed: private_data None, action NOTHING. ``file`` is the inner file
    whose hook runs; vm_file stays the VMA's. vm_ops is pre-filled from the VMA only in
    mainline (v4 and 6.18 start with None).
    """
    return VmAreaDesc(
        mm,
        file,
        vma.vm_start,
        vma.vm_end,
        vma.vm_pgoff,
        vma.vm_file,
        vma.vm_flags,
        vma.vm_page_prot,
        MmapAction(),
        vm_ops=vma.vm_ops if mm.profile.compat_prefills_vm_ops else None,
    )


def vma_set_file(mm: AddressSpace, vma: Vma, file: File | None) -> None:
    """vma_set_file() (mm/mmap.c): swap the VMA's file (the kernel moves the reference)."""
    del mm  # the model does not count file references
    vma.vm_file = file


def compat_set_vma_from_desc(mm: AddressSpace, vma: Vma, desc: VmAreaDesc) -> None:
    """compat_set_vma_from_desc() (mm/vma.h; 6.18 set_vma_from_desc).

    pgoff, file swap, flags (6.18: only added, never cleared; later: replaced), page_prot,
    and vm_ops / vm_private_data unconditionally - a hook that set no ops leaves None.
    """
    vma.vm_pgoff = desc.pgoff
    vma_set_file(mm, vma, desc.vm_file)
    if mm.profile.compat_flags_or_only:
        vma.vm_flags |= desc.vm_flags
    else:
        vma.vm_flags = desc.vm_flags
    vma.vm_page_prot = desc.page_prot
    vma.vm_ops = desc.vm_ops
    vma.vm_private_data = desc.private_data


def compat_vma_mmap_tail(mm: AddressSpace, desc: VmAreaDesc, vma: Vma) -> None:
    """__compat_vma_mmap() (mm/util.c, v4 17/21): prepare the action, write the desc back,
    complete the action on the VMA (is_compat). Raises OSError.

    For drivers that build the desc themselves (compat_set_desc_from_vma + their own hook).
    Under 6.18 there is no action: only the write-back happens.
    """
    owner = ops_owner(desc.file.f_op)
    refuse_unbuildable(mm, "mmap_prepare", owner, vma.id, lambda: mmap_action_prepare(mm, desc))
    compat_set_vma_from_desc(mm, vma, desc)
    refuse_unbuildable(
        mm, "mmap_prepare", owner, vma.id,
        lambda: mmap_action_complete(mm, vma, desc.action, is_compat=True),
    )


def compat_vma_mmap(mm: AddressSpace, file: File, vma: Vma) -> None:
    """compat_vma_mmap() (mm/util.c; 6.18 compat_vma_mmap_prepare): run ``file``'s
    mmap_prepare on an existing VMA and apply it. Raises OSError.

    The rmap-hiding request is dropped (v4 05/21): the lock is never held here.
    """
    f_op = file.f_op
    if f_op is None or f_op.mmap_prepare is None:
        raise ValueError(f"{file!r} has no mmap_prepare")
    desc = compat_set_desc_from_vma(mm, file, vma)
    call_prepare_hook(mm, f_op.mmap_prepare, type(f_op).__name__, desc, vma)
    if mm.profile.has_actions:
        desc.action.hide_from_rmap_until_complete = False
    compat_vma_mmap_tail(mm, desc, vma)


def vma_check_mmap_hook(mm: AddressSpace, vma: Vma) -> None:
    """__vma_check_mmap_hook() (v4 08/21 mm/util.c; removed by 3d3544a6c996).

    A legacy ``.mmap`` must not leave vm_ops->mapped set: WARN_ON_ONCE and EINVAL. The
    check cannot tell a compat-layer inner hook from a driver's own, which broke uio/TCMU.
    """
    ops = vma.vm_ops
    if ops is None or ops.mapped is None:
        return
    if mm.tracer.active:
        mm.tracer.emit(
            WarnOn("WARN_ON_ONCE: __vma_check_mmap_hook", f"vma={vma.id} ops={ops!r}")
        )
    raise oserror(E.EINVAL, "vm_ops->mapped set by a legacy mmap hook")


def call_legacy_mmap(mm: AddressSpace, file: File, vma: Vma) -> None:
    """f_op->mmap(file, vma) with tracing and the "mmap" failure point. Raises OSError."""
    f_op = file.f_op
    if f_op is None or f_op.mmap is None:
        raise ValueError(f"{file!r} has no mmap")
    mmap = f_op.mmap
    error = call_hook(
        mm, "mmap", ops_owner(f_op), vma.id, (file,), lambda: mmap(file, vma), "mmap",
        lambda: check_vma(vma),
    )
    if error is not None:
        raise error


def vfs_mmap(mm: AddressSpace, file: File, vma: Vma) -> None:
    """vfs_mmap() (include/linux/fs.h): the file's mmap_prepare via the compat layer, else
    its legacy mmap - then, under v4, __vma_check_mmap_hook. Raises OSError.

    On failure the caller discards the VMA without calling close (__mmap_new_file_vma).
    """
    f_op = file.f_op
    if f_op is not None and f_op.mmap_prepare is not None:
        compat_vma_mmap(mm, file, vma)
        return
    call_legacy_mmap(mm, file, vma)
    refuse_unbuildable(
        mm, "mmap", ops_owner(f_op), vma.id, lambda: refuse_mapped_without_profile(mm, vma.vm_ops)
    )
    if mm.profile.legacy_mapped_check:
        vma_check_mmap_hook(mm, vma)
