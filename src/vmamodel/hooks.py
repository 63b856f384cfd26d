"""Calling vm_operations hooks the way the kernel does, with tracing and fault injection."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vmamodel.events import HookCall
from vmamodel.file import VMA_DUMMY_VM_OPS

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma


def oserror(err: int, detail: str = "") -> OSError:
    """An OSError carrying a kernel errno, as every failing entry point raises."""
    message = os.strerror(err)
    return OSError(err, f"{message}: {detail}" if detail else message)


def maybe_inject(mm: AddressSpace, point: str) -> None:
    """Fail at ``point`` if the injector says so (the caller checks ``mm.injector.armed``)."""
    err = mm.injector.check(point)
    if err:
        if mm.tracer.active:
            from vmamodel.events import FaultInjected

            mm.tracer.emit(FaultInjected(point, mm.injector.reached[point], err))
        raise oserror(err, f"injected at {point}")


def _trace(mm: AddressSpace, hook: str, vma: Vma, args: tuple[object, ...], err: int) -> None:
    owner = type(vma.vm_ops).__name__ if vma.vm_ops is not None else "-"
    mm.tracer.emit(HookCall(hook, owner, vma.id, args, err))


def vma_close(mm: AddressSpace, vma: Vma) -> None:
    """vma_close() (mm/util.c): call ->close once, then swap in the dummy ops."""
    ops = vma.vm_ops
    if ops is None or ops.close is None:
        return
    if mm.tracer.active:
        _trace(mm, "close", vma, (), 0)
    ops.close(vma)
    vma.vm_ops = VMA_DUMMY_VM_OPS


def vma_open(mm: AddressSpace, vma: Vma) -> None:
    """->open on a VMA made from another: a split piece, a fork copy, an mremap copy."""
    ops = vma.vm_ops
    if ops is None or ops.open is None:
        return
    if mm.tracer.active:
        _trace(mm, "open", vma, (), 0)
    ops.open(vma)


def call_may_split(mm: AddressSpace, vma: Vma, addr: int) -> None:
    """->may_split in __split_vma and prep_move_vma: an error refuses the split."""
    ops = vma.vm_ops
    if ops is None or ops.may_split is None:
        return
    try:
        if mm.injector.armed:
            maybe_inject(mm, "may_split")
        ops.may_split(vma, addr)
    except OSError as exc:
        if mm.tracer.active:
            _trace(mm, "may_split", vma, (addr,), exc.errno or 0)
        raise
    if mm.tracer.active:
        _trace(mm, "may_split", vma, (addr,), 0)


def call_mprotect_hook(mm: AddressSpace, vma: Vma, start: int, end: int, newflags: int) -> None:
    """->mprotect in do_mprotect_pkey: an error stops the loop."""
    ops = vma.vm_ops
    if ops is None or ops.mprotect is None:
        return
    try:
        ops.mprotect(vma, start, end, newflags)
    except OSError as exc:
        if mm.tracer.active:
            _trace(mm, "mprotect", vma, (start, end, newflags), exc.errno or 0)
        raise
    if mm.tracer.active:
        _trace(mm, "mprotect", vma, (start, end, newflags), 0)
