"""A misbehaving driver hook (vmamodel.hooks.DriverError): it raises something other than an
OSError (an oops in the kernel), or sets a field to a value of the wrong type. The call is
undone exactly as if the hook had failed with an errno, DriverError is raised from the entry
point (hook, VMA, original exception as __cause__), and validate_mm() holds afterwards."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import pytest

import vmamodel as v
from vmamodel import buildinfo
from vmamodel.driver_error import DriverError
from vmamodel.mm import AddressSpace

from .util import RO, RW, P, at

SHARED = v.MAP_SHARED | v.MAP_FIXED


def _fail(kind: str) -> None:
    if kind == "oserror":
        raise OSError(errno.EIO, "driver says no")
    raise {"runtime": RuntimeError, "key": KeyError, "zero": ZeroDivisionError}[kind]("oops")


class Ops(v.VmOperations):
    """vm_operations whose hook ``failing`` fails with ``kind``; counts open/close."""

    def __init__(self, failing: str, kind: str) -> None:
        self.failing, self.kind = failing, kind
        self.opened = self.closed = 0

    def _maybe(self, hook: str) -> None:
        if hook == self.failing:
            _fail(self.kind)

    def open(self, vma: Any) -> None:  # type: ignore[override]
        self.opened += 1
        self._maybe("open")

    def close(self, vma: Any) -> None:  # type: ignore[override]
        self.closed += 1
        self._maybe("close")

    def mapped(self, start: int, end: int, pgoff: int, file: Any, ref: Any) -> None:  # type: ignore[override]
        self._maybe("mapped")

    def may_split(self, vma: Any, addr: int) -> None:  # type: ignore[override]
        self._maybe("may_split")

    def mremap(self, vma: Any) -> None:  # type: ignore[override]
        self._maybe("mremap")

    def mprotect(self, vma: Any, start: int, end: int, newflags: int) -> None:  # type: ignore[override]
        self._maybe("mprotect")


class Fops(v.FileOperations):
    def __init__(self, ops: Ops) -> None:
        self.ops = ops

    def mmap_prepare(self, desc: Any) -> None:  # type: ignore[override]
        desc.vm_ops = self.ops
        self.ops._maybe("mmap_prepare")


def _space() -> AddressSpace:
    return AddressSpace(profile="v4")


def _map(mm: AddressSpace, ops: Ops, pages: int = 4) -> v.File:
    file = v.File("/dev/drv", size=64 * P, f_op=Fops(ops))
    mm.mmap(at(0), pages * P, RW, SHARED, file)
    return file


# hook -> what to do after a healthy 4-page mapping at page 0 (None: the mapping itself)
ACTIONS: dict[str, Callable[[AddressSpace], Any] | None] = {
    "mmap_prepare": None,
    "mapped": None,
    "may_split": lambda mm: mm.munmap(at(1), P),
    "mprotect": lambda mm: mm.mprotect(at(0), 4 * P, RO),
    "mremap": lambda mm: mm.mremap(at(0), 4 * P, 4 * P, v.MREMAP_MAYMOVE | v.MREMAP_FIXED,
                                   at(20)),
}


def _run(hook: str, kind: str, action: Callable[[AddressSpace], Any] | None = None
         ) -> tuple[AddressSpace, Ops, BaseException | None]:
    mm = _space()
    ops = Ops(hook, kind)
    action = action or ACTIONS[hook]
    error: BaseException | None = None
    try:
        if action is None:
            _map(mm, ops)
        else:
            ops.failing = ""
            _map(mm, ops)
            ops.failing = hook
            action(mm)
    except (OSError, DriverError) as exc:
        error = exc
    mm.validate_mm()
    return mm, ops, error


@pytest.mark.parametrize("kind", ["runtime", "key", "zero"])
@pytest.mark.parametrize("hook", sorted(ACTIONS))
def test_a_driver_oops_rolls_back_as_an_oserror_and_raises_driver_error(hook, kind):
    reference, ref_ops, ref_error = _run(hook, "oserror")
    assert isinstance(ref_error, OSError) and ref_error.errno == errno.EIO
    mm, ops, error = _run(hook, kind)
    assert isinstance(error, DriverError), error
    assert not isinstance(error, OSError)
    assert error.hook == hook and type(error.__cause__).__name__ == {
        "runtime": "RuntimeError", "key": "KeyError", "zero": "ZeroDivisionError"}[kind]
    assert mm.maps() == reference.maps()
    assert (ops.opened, ops.closed) == (ref_ops.opened, ref_ops.closed)
    assert mm.map_count == reference.map_count
    # the model goes on working
    mm.munmap(0, 1 << 46)
    mm.validate_mm()
    assert mm.pending_driver_error is None


# entry point -> a call that splits the healthy 4-page mapping at page 0 (may_split runs)
SPLITS: dict[str, Callable[[AddressSpace], Any]] = {
    "munmap": lambda mm: mm.munmap(at(1), P),
    "mprotect": lambda mm: mm.mprotect(at(1), P, RO),
    "madvise": lambda mm: mm.madvise(at(1), P, v.MADV_DONTFORK),
}


@pytest.mark.parametrize("entry", sorted(SPLITS))
def test_every_splitting_entry_raises_the_driver_error_of_may_split(entry):
    """Each entry point that can split a driver's VMA gives the hook's oops back as a
    DriverError, with the space as the same call failing with an errno leaves it."""
    reference, _, ref_error = _run("may_split", "oserror", SPLITS[entry])
    assert isinstance(ref_error, OSError) and ref_error.errno == errno.EIO
    mm, _, error = _run("may_split", "runtime", SPLITS[entry])
    assert isinstance(error, DriverError) and error.hook == "may_split", error
    assert mm.maps() == reference.maps()
    assert mm.pending_driver_error is None


def test_driver_error_names_the_vma():
    mm = _space()
    ops = Ops("", "runtime")
    _map(mm, ops)
    ops.failing = "mprotect"
    [vma] = list(mm.tree)
    with pytest.raises(DriverError, match="mprotect") as info:
        mm.mprotect(at(0), P, RO)
    assert info.value.vma_id == vma.id and info.value.owner == "Ops"


def test_an_oserror_without_errno_is_a_driver_error():
    mm = _space()
    ops = Ops("", "runtime")
    _map(mm, ops)

    def bad(vma: Any, addr: int) -> None:
        raise OSError("no errno")

    ops.may_split = bad  # type: ignore[method-assign]
    before = mm.maps()
    with pytest.raises(DriverError):
        mm.munmap(at(1), P)
    assert mm.maps() == before
    mm.validate_mm()


@pytest.mark.parametrize("kind", ["runtime", "oserror"])
def test_a_failing_close_at_exit_still_frees_every_vma(kind):
    mm = _space()
    ops = Ops("", kind)
    _map(mm, ops)
    mm.mprotect(at(1), P, RO)  # three VMAs, each with ->close
    ops.failing = "close"
    with pytest.raises(DriverError, match="close"):
        mm.exit()
    assert mm.map_count == 0 and list(mm.tree) == []
    assert ops.closed == 3
    mm.validate_mm()


def test_a_failing_close_at_munmap_still_unmaps():
    mm = _space()
    ops = Ops("", "runtime")
    _map(mm, ops)
    ops.failing = "close"
    with pytest.raises(DriverError):
        mm.munmap(at(0), 4 * P)
    assert mm.maps() == "" and mm.map_count == 0
    mm.validate_mm()


def test_a_failing_open_at_split_keeps_both_pieces():
    mm = _space()
    ops = Ops("", "runtime")
    _map(mm, ops)
    ops.failing = "open"
    with pytest.raises(DriverError, match="open"):
        mm.mprotect(at(1), P, RO)
    assert mm.map_count == 3
    mm.validate_mm()


class BadDesc(v.FileOperations):
    def __init__(self, field: str, value: object) -> None:
        self.field, self.value = field, value

    def mmap_prepare(self, desc: Any) -> None:  # type: ignore[override]
        setattr(desc, self.field, self.value)


class BadVma(v.FileOperations):
    def __init__(self, field: str, value: object) -> None:
        self.field, self.value = field, value

    def mmap(self, file: Any, vma: Any) -> None:  # type: ignore[override]
        setattr(vma, self.field, self.value)


#: The fields the kernel declares unsigned long. In the compiled build vma.py's classes are
#: native and their int attributes refuse any other type where the hook writes them (as the
#: kernel's compiler refuses such a driver); the pure build checks them right after the hook
#: and names the field. Either way the call is a DriverError, rolled back.
INT_FIELDS = {"vm_flags", "pgoff", "page_prot", "vm_pgoff", "vm_page_prot", "vm_start", "vm_end"}
NATIVE_VMA = "vma" in buildinfo.compiled_modules()


def assert_refused(error: DriverError, hook: Callable[..., None], field: str,
                   value: object) -> None:
    """The hook's wrong-typed ``field`` is what refused the call: a TypeError refused the
    assignment inside the hook itself (native attributes), or the check after the hook
    named the field."""
    cause = error.__cause__
    assert isinstance(cause, TypeError)
    if NATIVE_VMA and field in INT_FIELDS and not isinstance(value, int):
        tb = cause.__traceback__
        assert tb is not None
        while tb.tb_next is not None:
            tb = tb.tb_next
        assert tb.tb_frame.f_code is hook.__code__, str(error)
    else:
        assert field in str(error)


BAD_FIELDS = [
    ("vm_flags", "rw"), ("vm_flags", None), ("vm_flags", -1), ("vm_flags", 1 << 64),
    ("vm_flags", 1.5), ("pgoff", -1), ("pgoff", "0"), ("page_prot", None),
    ("vm_ops", "ops"), ("vm_ops", 5), ("vm_file", "/etc/passwd"),
]


@pytest.mark.parametrize("profile", ["6.18", "v4", "mainline"])
@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_a_wrong_typed_desc_field_is_refused_where_it_is_read(profile, field, value):
    mm = AddressSpace(profile=profile)
    mm.mmap(at(10), P, RW, v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED)
    before = mm.maps()
    with pytest.raises(DriverError) as info:
        mm.mmap(at(0), P, RW, SHARED, v.File("/dev/bad", size=P, f_op=BadDesc(field, value)))
    assert_refused(info.value, BadDesc.mmap_prepare, field, value)
    assert mm.maps() == before
    mm.validate_mm()
    # nothing is left broken for later calls
    mm.mprotect(at(10), P, RO)
    mm.munmap(0, 1 << 46)
    mm.validate_mm()


VMA_FIELDS = [
    ("vm_flags", "rw"), ("vm_flags", -5), ("vm_pgoff", None), ("vm_page_prot", 2.0),
    ("vm_ops", object()), ("vm_file", 3), ("vm_start", at(0) + 1), ("vm_end", at(0)),
    ("vm_end", None),
]


@pytest.mark.parametrize(("field", "value"), VMA_FIELDS)
def test_a_wrong_typed_vma_field_from_a_legacy_mmap_is_refused(field, value):
    mm = _space()
    with pytest.raises(DriverError) as info:
        mm.mmap(at(0), P, RW, SHARED, v.File("/dev/bad", size=P, f_op=BadVma(field, value)))
    assert_refused(info.value, BadVma.mmap, field, value)
    assert mm.maps() == ""
    mm.validate_mm()
    mm.mmap(at(0), P, RW, v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED)
    mm.validate_mm()


def test_traced_calls_behave_the_same():
    mm = _space()
    ops = Ops("mapped", "runtime")
    with mm.tracer.collect() as events, pytest.raises(DriverError):
        _map(mm, ops)
    assert mm.maps() == ""
    hook_calls = [e for e in events if type(e).__name__ == "HookCall" and e.hook == "mapped"]
    assert hook_calls and hook_calls[0].errno == errno.EFAULT
