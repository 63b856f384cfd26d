"""Calling vm_operations hooks the way the kernel does, with tracing and fault injection."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from vmamodel.events import FaultInjected, HookCall
from vmamodel.file import VMA_DUMMY_VM_OPS

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma


def oserror(err: int, detail: str = "") -> OSError:
    """An OSError carrying a kernel errno, as every failing entry point raises."""
    message = os.strerror(err)
    return OSError(err, f"{message}: {detail}" if detail else message)


def injected_errno(mm: AddressSpace, point: str) -> int:
    """The errno the injector fails ``point`` with this time, or 0; records the
    FaultInjected event. The caller checks ``mm.injector.armed`` first (the fast path)."""
    err = mm.injector.check(point)
    if err and mm.tracer.active:
        mm.tracer.emit(FaultInjected(point, mm.injector.reached[point], err))
    return err


def maybe_inject(mm: AddressSpace, point: str) -> None:
    """Raise the OSError injected at ``point``, if any (the caller checks
    ``mm.injector.armed``)."""
    err = injected_errno(mm, point)
    if err:
        raise oserror(err, f"injected at {point}")


def hook_errno(exc: OSError, hook: str) -> int:
    """The errno a failing hook raised; an OSError without one is a driver bug."""
    if not exc.errno:
        raise ValueError(f"{hook} raised OSError without an errno: {exc!r}") from exc
    return exc.errno


HookArgs = tuple[object, ...] | Callable[[], tuple[object, ...]]


def call_hook(
    mm: AddressSpace,
    hook: str,
    owner: str,
    vma_id: int | None,
    args: HookArgs,
    run: Callable[[], object],
    point: str | None = None,
) -> OSError | None:
    """Call one driver hook as the kernel's callers do, the one path for every hook that can
    fail: the failure point ``point`` fails it before it runs; an ``OSError`` it raises is
    its errno; a HookCall event records it. ``args`` (or a callable giving them, evaluated
    after the hook, when tracing) is what the event shows. Returns None, or the OSError to
    raise or to turn into an errno (``exc.errno``)."""
    error: OSError | None = None
    if point is not None and mm.injector.armed:
        err = injected_errno(mm, point)
        if err:
            error = oserror(err, f"injected at {point}")
    if error is None:
        try:
            run()
        except OSError as exc:
            hook_errno(exc, hook)
            error = exc
    if mm.tracer.active:
        shown = args() if callable(args) else args
        mm.tracer.emit(HookCall(hook, owner, vma_id, shown, error.errno or 0 if error else 0))
    return error


def ops_owner(ops: object) -> str:
    """How a HookCall names the vm_operations (or file_operations) a hook belongs to."""
    return type(ops).__name__ if ops is not None else "-"


def _trace(mm: AddressSpace, hook: str, vma: Vma, args: tuple[object, ...], err: int) -> None:
    mm.tracer.emit(HookCall(hook, ops_owner(vma.vm_ops), vma.id, args, err))


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
    may_split = ops.may_split
    error = call_hook(
        mm, "may_split", ops_owner(ops), vma.id, (addr,), lambda: may_split(vma, addr),
        "may_split",
    )
    if error is not None:
        raise error


def call_mprotect_hook(mm: AddressSpace, vma: Vma, start: int, end: int, newflags: int) -> None:
    """->mprotect in do_mprotect_pkey: an error stops the loop."""
    ops = vma.vm_ops
    if ops is None or ops.mprotect is None:
        return
    mprotect = ops.mprotect
    error = call_hook(
        mm, "mprotect", ops_owner(ops), vma.id, (start, end, newflags),
        lambda: mprotect(vma, start, end, newflags),
    )
    if error is not None:
        raise error
