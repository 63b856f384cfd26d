"""Calling vm_operations hooks the way the kernel does, with tracing and fault injection."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

from vmamodel.constants import PAGE_MASK, ULONG_MAX
from vmamodel.driver_error import DriverError, DriverFault
from vmamodel.events import FaultInjected, HookCall
from vmamodel.file import VMA_DUMMY_VM_OPS, File, VmOperations

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.mm_types import MmStruct
    from vmamodel.vma import Vma, VmAreaDesc


def oserror(err: int, detail: str = "") -> OSError:
    """An OSError carrying a kernel errno, as every failing entry point raises."""
    message = os.strerror(err)
    return OSError(err, f"{message}: {detail}" if detail else message)


def injected_errno(mm: MmStruct, point: str) -> int:
    """The errno the injector fails ``point`` with this time, or 0; records the
    FaultInjected event. The caller checks ``mm.injector.armed`` first (the fast path)."""
    err = mm.injector.check(point)
    if err and mm.tracer.active:
        mm.tracer.emit(FaultInjected(point, mm.injector.reached[point], err))
    return err


def maybe_inject(mm: MmStruct, point: str) -> None:
    """Raise the OSError injected at ``point``, if any (the caller checks
    ``mm.injector.armed``)."""
    err = injected_errno(mm, point)
    if err:
        raise oserror(err, f"injected at {point}")


def driver_fault(
    mm: MmStruct, hook: str, owner: str, vma_id: int | None, original: BaseException
) -> DriverFault:
    """Record a misbehaving hook on ``mm`` (the first one of a call is raised at its end)."""
    error = DriverError(hook, owner, vma_id, original)
    space = cast("AddressSpace", mm)
    if space.pending_driver_error is None:
        space.pending_driver_error = error
    return DriverFault(error)


def refuse_unbuildable(
    mm: MmStruct, hook: str, owner: str, vma_id: int | None, check: Callable[[], None]
) -> None:
    """Run a check of what a hook left behind that raises TypeError when the driver would not
    compile under the profile (a field or helper it lacks); that is a driver bug: a
    DriverFault, rolled back by the caller as an OSError."""
    try:
        check()
    except TypeError as exc:
        raise driver_fault(mm, hook, owner, vma_id, exc) from exc


HookArgs = tuple[object, ...] | Callable[[], tuple[object, ...]]


def call_hook(
    mm: MmStruct,
    hook: str,
    owner: str,
    vma_id: int | None,
    args: HookArgs,
    run: Callable[[], object],
    point: str | None = None,
    check: Callable[[], None] | None = None,
) -> OSError | None:
    """Call one driver hook as the kernel's callers do, the one path for every hook that can
    fail: the failure point ``point`` fails it before it runs; an ``OSError`` it raises is
    its errno; anything else it raises, an OSError without errno, or a field ``check`` (run
    after it) refuses, is a DriverFault (see DriverError). A HookCall event records it.
    ``args`` (or a callable giving them, evaluated after the hook, when tracing) is what the
    event shows. Returns None, or the OSError to raise or to turn into an errno."""
    error: OSError | None = None
    if point is not None and mm.injector.armed:
        err = injected_errno(mm, point)
        if err:
            error = oserror(err, f"injected at {point}")
    if error is None:
        try:
            run()
            if check is not None:
                check()
        except OSError as exc:
            error = exc if exc.errno else driver_fault(mm, hook, owner, vma_id, exc)
        except Exception as exc:  # a driver bug: anything at all
            error = driver_fault(mm, hook, owner, vma_id, exc)
    if mm.tracer.active:
        shown = _shown(args)
        mm.tracer.emit(HookCall(hook, owner, vma_id, shown, error.errno or 0 if error else 0))
    return error


def _shown(args: HookArgs) -> tuple[object, ...]:
    """The arguments a HookCall shows; fields a driver broke show as they are."""
    if not callable(args):
        return args
    try:
        return args()
    except Exception:  # the hook left a field no int() takes: show none
        return ()


def _field_error(what: str, field: str, value: object, expected: str) -> TypeError:
    return TypeError(f"{what}.{field} = {value!r}: must be {expected}")


def _check_common(what: str, ints: Mapping[str, object], ops: object, file: object) -> None:
    for field, value in ints.items():
        if not isinstance(value, int) or not 0 <= value <= ULONG_MAX:
            raise _field_error(what, field, value, "an int in [0, 2**64)")
    if ops is not None and not isinstance(ops, VmOperations):
        raise _field_error(what, "vm_ops", ops, "a VmOperations or None")
    if file is not None and not isinstance(file, File):
        raise _field_error(what, "vm_file", file, "a File or None")


def check_desc(desc: VmAreaDesc) -> None:
    """What mmap_prepare may set on a vm_area_desc, checked where call_mmap_prepare() copies
    it back: flags, pgoff and page_prot are unsigned longs, vm_ops a VmOperations or None,
    vm_file a File or None. Raises TypeError."""
    ints = {"vm_flags": desc.vm_flags, "pgoff": desc.pgoff, "page_prot": desc.page_prot}
    _check_common("desc", ints, desc.vm_ops, desc.vm_file)


def check_vma(vma: Vma) -> None:
    """What a legacy .mmap may set on the VMA, checked before __mmap_region() goes on with
    it: as check_desc(), and the range stays a page-aligned, non-empty one. Raises
    TypeError."""
    ints = {"vm_flags": vma.vm_flags, "vm_pgoff": vma.vm_pgoff,
            "vm_page_prot": vma.vm_page_prot, "vm_start": vma.vm_start, "vm_end": vma.vm_end}
    _check_common("vma", ints, vma.vm_ops, vma.vm_file)
    if (vma.vm_start | vma.vm_end) & ~PAGE_MASK or vma.vm_start >= vma.vm_end:
        raise _field_error("vma", "vm_start/vm_end", (vma.vm_start, vma.vm_end),
                           "a page-aligned range")


def ops_owner(ops: object) -> str:
    """How a HookCall names the vm_operations (or file_operations) a hook belongs to."""
    return type(ops).__name__ if ops is not None else "-"


def _trace(mm: MmStruct, hook: str, vma: Vma, args: tuple[object, ...], err: int) -> None:
    mm.tracer.emit(HookCall(hook, ops_owner(vma.vm_ops), vma.id, args, err))


def vma_close(mm: MmStruct, vma: Vma) -> None:
    """vma_close() (mm/util.c): call ->close once, then swap in the dummy ops. ->close
    returns nothing in the kernel: whatever it raises is a DriverError, the VMA is closed
    all the same."""
    ops = vma.vm_ops
    if ops is None or ops.close is None:
        return
    if mm.tracer.active:
        _trace(mm, "close", vma, (), 0)
    _call_void(mm, "close", ops, vma)
    vma.vm_ops = VMA_DUMMY_VM_OPS


def vma_open(mm: MmStruct, vma: Vma) -> None:
    """->open on a VMA made from another: a split piece, a fork copy, an mremap copy. It
    returns nothing in the kernel: whatever it raises is a DriverError, the VMA stays."""
    ops = vma.vm_ops
    if ops is None or ops.open is None:
        return
    if mm.tracer.active:
        _trace(mm, "open", vma, (), 0)
    _call_void(mm, "open", ops, vma)


def _call_void(mm: MmStruct, hook: str, ops: VmOperations, vma: Vma) -> None:
    """->open or ->close: a hook that cannot fail."""
    run = ops.open if hook == "open" else ops.close
    assert run is not None
    try:
        run(vma)
    except Exception as exc:  # a driver bug, even an OSError: these hooks return void
        driver_fault(mm, hook, ops_owner(ops), vma.id, exc)


def call_may_split(mm: MmStruct, vma: Vma, addr: int) -> None:
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


def call_mprotect_hook(mm: MmStruct, vma: Vma, start: int, end: int, newflags: int) -> None:
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
