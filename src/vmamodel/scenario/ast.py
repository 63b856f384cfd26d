"""The scenario language's syntax tree and the table of calls it knows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from vmamodel import constants
from vmamodel.drivers.devices import is_device_path, is_factory_path

if TYPE_CHECKING:
    pass


# Syntax tree


@dataclass(frozen=True, slots=True)
class Num:
    value: int


@dataclass(frozen=True, slots=True)
class Name:
    ident: str


@dataclass(frozen=True, slots=True)
class Str:
    value: str


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr


Expr = Num | Name | Str | Unary | Binary


@dataclass(frozen=True, slots=True)
class ExpectErrno:
    """``= -EINVAL`` (errno set) or ``= -1`` (any errno: errno is None)."""

    errno: int | None


@dataclass(frozen=True, slots=True)
class ExpectValue:
    """``= 0`` or ``= BASE + 0x10000``: the call succeeds with this value."""

    expr: Expr


Expect = ExpectErrno | ExpectValue


@dataclass(frozen=True, slots=True)
class Call:
    line: int
    text: str
    func: str
    args: tuple[Expr, ...]
    target: str | None = None
    bind: str | None = None
    expect: Expect | None = None


@dataclass(frozen=True, slots=True)
class Marker:
    line: int
    text: str
    kind: str  # "maps" or "smaps"


Statement = Call | Marker


@dataclass(frozen=True, slots=True)
class Scenario:
    path: str
    statements: tuple[Statement, ...]
    profile: str | None = None
    layout: str = "arena"
    base: int | None = None
    #: ``#! inject: POINT nth=N``: the N-th reach of failure point POINT fails (model only)
    inject: tuple[str, int] | None = None
    #: ``#! check: lifecycle``: the lifecycle detectors of ``vmamodel check`` watch the run
    check: bool = False

    @property
    def calls(self) -> tuple[Call, ...]:
        return tuple(s for s in self.statements if isinstance(s, Call))

    @property
    def has_markers(self) -> bool:
        return any(isinstance(s, Marker) for s in self.statements)

    @property
    def model_only(self) -> list[tuple[int, str]]:
        """(line, what) of every ``open`` of a built-in driver or a driver factory and every
        ``stacked`` file: the host has none of them, so ``vmamodel diff`` refuses such a
        scenario and ``vmamodel run`` runs it."""

        out = []
        for call in self.calls:
            if call.func == "stacked":
                out.append((call.line, "stacked()"))
            elif call.func == "open" and call.args and isinstance(call.args[0], Str) and (
                    is_device_path(call.args[0].value) or is_factory_path(call.args[0].value)):
                out.append((call.line, call.args[0].value))
        return out


# ---------------------------------------------------------------------------------------------
# Calls: their parameters and what they return


class Kind(Enum):
    INT = "a number"
    FILE = "a file"
    SPACE = "an address space"
    STR = "a string"
    FD = "a file or -1"
    TOUCH = "read or write"
    VOID = "nothing"


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: Kind
    default: int | None = None  # None: required


@dataclass(frozen=True, slots=True)
class CallSpec:
    params: tuple[Param, ...]
    result: Kind = Kind.VOID
    #: called on an address space (``child.mmap``) rather than globally (memfd_create)
    on_space: bool = True

    @property
    def required(self) -> int:
        return sum(1 for p in self.params if p.default is None)


def _p(name: str, kind: Kind = Kind.INT, default: int | None = None) -> Param:
    return Param(name, kind, default)


_ADDR_LEN = (_p("addr"), _p("length"))
CALLS: dict[str, CallSpec] = {
    "mmap": CallSpec(
        (*_ADDR_LEN, _p("prot"), _p("flags"), _p("fd", Kind.FD, -1), _p("offset", default=0)),
        Kind.INT,
    ),
    "munmap": CallSpec(_ADDR_LEN),
    "mprotect": CallSpec((*_ADDR_LEN, _p("prot"))),
    "touch": CallSpec((_p("addr"), _p("mode", Kind.TOUCH, 0))),
    "mremap": CallSpec(
        (_p("old"), _p("old_len"), _p("new_len"), _p("flags", default=0),
         _p("new_addr", default=0)),
        Kind.INT,
    ),
    "madvise": CallSpec((*_ADDR_LEN, _p("advice"))),
    "mlock": CallSpec(_ADDR_LEN),
    "mlock2": CallSpec((*_ADDR_LEN, _p("flags", default=0))),
    "munlock": CallSpec(_ADDR_LEN),
    "mlockall": CallSpec((_p("flags"),)),
    "munlockall": CallSpec(()),
    "brk": CallSpec((_p("addr"),), Kind.INT),
    "fork": CallSpec((), Kind.SPACE),
    "exit": CallSpec(()),
    "memfd_create": CallSpec((_p("name", Kind.STR), _p("size", default=0)), Kind.FILE, False),
    "open": CallSpec(
        (_p("path", Kind.STR), _p("flags", default=constants.O_RDWR), _p("size", default=0)),
        Kind.FILE,
        False,
    ),
    # The driver's file under a legacy .mmap that forwards to it (overlayfs / backing file);
    # a non-zero errno makes the outer hook fail after the inner one ran.
    "stacked": CallSpec((_p("file", Kind.FD), _p("fail_errno", default=0)), Kind.FILE, False),
}
