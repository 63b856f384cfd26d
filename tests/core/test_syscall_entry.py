"""The native entry points (vmamodel.syscalls.SyscallEntry) against vmamodel.abi's table.

Each hot entry point tests its arguments inline and converts the rest itself, so that a call
from Python reaches compiled code at once; ``SYSCALL_ARGS`` stays the one declaration of the
C types. These tests call every such entry with an edge value in each argument and check that
it behaves exactly as ``convert_args`` followed by the model function it runs: the same
result (value and type), errno or TypeError text, the same VMAs afterwards, and the same
converted arguments in the trace.
"""

from __future__ import annotations

import errno
import inspect
from collections.abc import Callable
from typing import Any

import pytest

import vmamodel as v
from vmamodel.abi import SYSCALL_ARGS, convert_args
from vmamodel.brk import sys_brk
from vmamodel.events import Syscall, SyscallReturn
from vmamodel.fault import do_user_addr_fault
from vmamodel.madvise import do_madvise
from vmamodel.mm import AddressSpace
from vmamodel.mmap import ksys_mmap_pgoff
from vmamodel.mprotect import do_mprotect_pkey
from vmamodel.mremap import do_mremap
from vmamodel.munmap import do_munmap
from vmamodel.syscalls import SyscallEntry

from .util import NOREPLACE, RO, RW, P, at

U64 = 1 << 64

#: Each native entry: the model function it runs, and in-range arguments of a call that
#: changes something on the model of :func:`_model` (one read-write page at at(0)).
ENTRIES: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
    "mmap": (ksys_mmap_pgoff, (at(1), 2 * P, RW, NOREPLACE, None, 0)),
    "munmap": (do_munmap, (at(0), P)),
    "mprotect": (do_mprotect_pkey, (at(0), P, RO)),
    "mremap": (do_mremap, (at(0), P, 2 * P, v.MREMAP_MAYMOVE, 0)),
    "madvise": (do_madvise, (at(0), P, v.MADV_DONTNEED)),
    "touch": (do_user_addr_fault, (at(0), True)),
    "brk": (sys_brk, (at(8),)),
}


class Index:
    """Not an int, but usable as one (like a numpy integer)."""

    def __index__(self) -> int:
        return int(at(0))

    def __repr__(self) -> str:
        return "Index()"


class Flag(int):
    """An int subclass (as an IntFlag is): converted to a plain int."""


#: Values at the edges of the C types, and values no register could hold.
EDGES: list[object] = [
    True, False, 0, -1, -P, U64 - 1, U64, U64 + 5, 1 << 63, (1 << 31) - 1, 1 << 31,
    -(1 << 31), -(1 << 31) - 1, 1 << 32, -(U64 + P), Flag(P), Index(), 1.0, None, "4096",
    b"x", [0], v.File("/f", 0),
]
_LABELS = [repr(edge) if not isinstance(edge, v.File) else "File" for edge in EDGES]


def _model() -> AddressSpace:
    mm = AddressSpace(start_brk=at(8), start_data=at(8), end_data=at(8))
    mm.mmap(at(0), P, RW, NOREPLACE)
    return mm


def _outcome(call: Callable[[], Any]) -> tuple[str, object]:
    try:
        result = call()
    except OSError as exc:
        return ("errno", errno.errorcode.get(exc.errno or 0, exc.errno))
    except (TypeError, ValueError) as exc:
        return (type(exc).__name__, str(exc))
    return ("result", (type(result), result))


def _cases() -> list[tuple[str, int, object]]:
    return [
        (name, position, edge)
        for name, (_, args) in ENTRIES.items()
        for position in range(len(args))
        for edge in EDGES
    ]


def _with(args: tuple[Any, ...], position: int, value: object) -> tuple[Any, ...]:
    return (*args[:position], value, *args[position + 1:])


def _ids() -> list[str]:
    return [
        f"{name}-{SYSCALL_ARGS[name][position][0]}-{label}"
        for name, (_, args) in ENTRIES.items()
        for position in range(len(args))
        for label in _LABELS
    ]


@pytest.mark.parametrize(("name", "position", "edge"), _cases(), ids=_ids())
def test_entry_behaves_as_convert_args_and_the_call(name: str, position: int,
                                                    edge: object) -> None:
    fn, args = ENTRIES[name]
    args = _with(args, position, edge)
    native, reference = _model(), _model()
    got = _outcome(lambda: getattr(native, name)(*args))

    def converted_call() -> Any:
        return fn(reference, *convert_args(name, args))

    assert got == _outcome(converted_call)
    assert native.maps() == reference.maps()
    assert (native.total_vm, native.map_count) == (reference.total_vm, reference.map_count)


@pytest.mark.parametrize(("name", "position", "edge"), _cases(), ids=_ids())
def test_entry_traces_the_converted_arguments(name: str, position: int, edge: object) -> None:
    args = _with(ENTRIES[name][1], position, edge)
    try:
        expected = convert_args(name, args)
    except (TypeError, ValueError):
        return  # refused before the call: nothing is traced (the test above checks the text)
    mm = _model()
    with mm.tracer.collect() as events:
        _outcome(lambda: getattr(mm, name)(*args))
    calls = [e for e in events if isinstance(e, (Syscall, SyscallReturn))]
    assert [type(e) for e in calls] == [Syscall, SyscallReturn]
    assert calls[0].name == calls[1].name == name
    assert [(type(a), a) for a in calls[0].args] == [(type(a), a) for a in expected]


def test_the_entries_take_the_parameters_of_syscall_args() -> None:
    """The native entries' parameters are the table's, so that keyword calls keep working
    (inspect.signature reads the compiled methods' text signatures too)."""
    for name in ENTRIES:
        params = list(inspect.signature(getattr(SyscallEntry, name)).parameters)
        assert params == ["self", *(arg for arg, _ in SYSCALL_ARGS[name])], name


def test_address_space_runs_the_native_entries() -> None:
    """No wrapper of mm.py stands in front of them."""
    for name in ENTRIES:
        assert name not in vars(AddressSpace), name
        assert getattr(AddressSpace, name) is getattr(SyscallEntry, name)


def test_keyword_arguments_and_defaults() -> None:
    mm = _model()
    assert mm.mmap(addr=at(2), length=P, prot=RO, flags=NOREPLACE) == at(2)
    assert mm.mremap(at(2), P, 2 * P, flags=v.MREMAP_MAYMOVE) == at(2)
    mm.mprotect(addr=at(2), length=2 * P, prot=RW)
    mm.madvise(at(2), P, advice=v.MADV_DONTNEED)
    mm.touch(addr=at(2))
    mm.munmap(length=2 * P, addr=at(2))
    assert [(x.vm_start, x.vm_end) for x in mm.vmas()] == [(at(0), at(1))]
    with pytest.raises(TypeError):
        mm.munmap(at(0))


def test_debug_validates_after_each_native_entry() -> None:
    """debug=True runs validate_mm() after the call (here: a map_count the tree does not
    hold is found at once)."""
    mm = AddressSpace(debug=True)
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.map_count += 1
    with pytest.raises(AssertionError, match="map_count 2 but 1 VMAs"):
        mm.madvise(at(0), P, v.MADV_DONTNEED)
