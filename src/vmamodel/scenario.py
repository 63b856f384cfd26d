"""The scenario language: a small, C-like file of VMA system calls, its parser and executor.

A scenario is written by hand, one call per line::

    #! profile: v4
    # three adjacent anonymous ranges become one VMA
    a = mmap(BASE, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED)
    b = mmap(a + PAGE, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) = BASE + 4K
    mprotect(a, 4K, 0x100) = -EINVAL
    maps
    fd = memfd_create("buf", 64K)
    child = fork()
    child.munmap(a, 4K) = 0

Grammar (one statement per line; ``#`` starts a comment, ``#!`` a directive)::

    line       := directive | marker | statement | (empty)
    directive  := "#!" KEY ":" VALUE            KEY: profile | layout | base
    marker     := "maps" | "smaps"
    statement  := [NAME "="] [NAME "."] CALL "(" [arg ("," arg)*] ")" ["=" expect]
    expect     := "-" ERRNO | "-1" [ERRNO] | expr
    arg        := expr | STRING
    expr       := C expression over integers: | ^ & << >> + - * and unary - ~, parentheses
    atom       := NUMBER | NAME | "(" expr ")"
    NUMBER     := decimal | 0x hex | 0o octal | 0b binary, optionally followed by K, M or G

Names: every integer constant of :mod:`vmamodel.constants` (``PROT_READ``, ``MAP_FIXED``...),
``NULL`` (0), ``PAGE`` (the page size), ``BASE`` (the arena base) and the names the scenario
binds with ``x = call(...)``. A call on a forked child is written ``child.call(...)``; a
call without a prefix runs on the first address space.

``open(PATH)`` of a path listed in :mod:`vmamodel.drivers.devices` (``"/dev/hpet"``,
``"/dev/stm0?chans=2"``, ``"/dev/good0"``...) opens a built-in driver model instead of a
file. Only the model has those: :attr:`Scenario.model_only` lists such lines, ``vmamodel
diff`` refuses the scenario, and a model run reports the drivers' ledgers (``Run.ledgers``).

A failing call is not fatal: its errno is the result and later lines continue, like a C program
that checks return values. A name bound by a failed call is an error only when used later.

Layouts (``#! layout:``): ``arena`` (the default) requires every address to lie in the arena
``[BASE, BASE + 1 TiB)`` so that the host oracle can run the scenario in a process that has
other mappings; ``process`` (reserved) will place mappings in a whole process.
"""

from __future__ import annotations

import errno as errno_mod
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vmamodel import constants

if TYPE_CHECKING:
    from vmamodel.events import Event
    from vmamodel.file import File

DEFAULT_BASE = 0x100000000000
DEFAULT_ARENA_SIZE = 1 << 40
LAYOUTS = ("arena", "process")


class ScenarioError(Exception):
    """A mistake in a scenario: reported as ``path:line: message``."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


class _LineError(Exception):
    """Raised inside the parser of one line; the caller adds file and line."""


# ---------------------------------------------------------------------------------------------
# Names


def _constant_names() -> dict[str, int]:
    names = {
        name: value
        for name, value in vars(constants).items()
        if name.isupper() and isinstance(value, int) and not isinstance(value, bool)
    }
    names["NULL"] = 0
    names["PAGE"] = constants.PAGE_SIZE
    return names


CONSTANTS: dict[str, int] = _constant_names()
ERRNOS: dict[str, int] = {
    name: value for name, value in vars(errno_mod).items() if name.startswith("E")
    and isinstance(value, int)
}
#: Words with a meaning of their own in some argument positions; they cannot be bound.
TOUCH_WORDS = {"read": False, "write": True}
RESERVED = {"BASE", "maps", "smaps", *TOUCH_WORDS}


def errno_name(err: int) -> str:
    return errno_mod.errorcode.get(err, f"E{err}")


# ---------------------------------------------------------------------------------------------
# Tokens

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t]+)
  | (?P<comment>\#.*)
  | (?P<num>0[xX][0-9a-fA-F]+[KMG]?|0[oO][0-7]+[KMG]?|0[bB][01]+[KMG]?|[0-9]+[KMG]?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<op><<|>>|[-+*|&^~(),=.])
    """,
    re.VERBOSE,
)
_SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num", "name", "str", "op", "end"
    text: str
    col: int


def tokenize(text: str) -> list[Token]:
    """Split one line into tokens; a comment ends the line."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise _LineError(f"unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        if kind == "comment":
            break
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", pos))  # at the comment, if any
    return tokens


def parse_number(text: str) -> int:
    scale = _SUFFIX.get(text[-1], 1)
    digits = text[:-1] if scale != 1 else text
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        raise _LineError(f"bad number {text!r}: write octal as 0o{digits[1:]}")
    return int(digits, 0) * scale


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


# ---------------------------------------------------------------------------------------------
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

    @property
    def calls(self) -> tuple[Call, ...]:
        return tuple(s for s in self.statements if isinstance(s, Call))

    @property
    def has_markers(self) -> bool:
        return any(isinstance(s, Marker) for s in self.statements)

    @property
    def model_only(self) -> list[tuple[int, str]]:
        """(line, path) of every ``open`` of a built-in driver: the host has none of them,
        so ``vmamodel diff`` refuses such a scenario and ``vmamodel run`` runs it."""
        from vmamodel.drivers.devices import is_device_path

        return [
            (call.line, call.args[0].value)
            for call in self.calls
            if call.func == "open" and call.args and isinstance(call.args[0], Str)
            and is_device_path(call.args[0].value)
        ]


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
}


# ---------------------------------------------------------------------------------------------
# Parser


class _LineParser:
    """Recursive descent over the tokens of one line (C operator precedence)."""

    _BINARY_LEVELS: tuple[tuple[str, ...], ...] = (("|",), ("^",), ("&",), ("<<", ">>"),
                                                   ("+", "-"), ("*",))

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def peek_at(self, offset: int) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def accept(self, text: str) -> bool:
        if self.peek.kind == "op" and self.peek.text == text:
            self.pos += 1
            return True
        return False

    def expect_op(self, text: str) -> None:
        if not self.accept(text):
            raise _LineError(f"expected '{text}', found {_describe(self.peek)}")

    def expect_name(self, what: str) -> str:
        token = self.advance()
        if token.kind != "name":
            raise _LineError(f"expected {what}, found {_describe(token)}")
        return token.text

    def expect_end(self) -> None:
        if self.peek.kind != "end":
            raise _LineError(f"unexpected {_describe(self.peek)}")

    # statement := [NAME "="] [NAME "."] CALL "(" args ")" ["=" expect]
    def statement(self, line: int, text: str) -> Statement:
        first = self.peek
        if first.kind == "name" and first.text in ("maps", "smaps") \
                and self.peek_at(1).kind == "end":
            return Marker(line, text, first.text)
        bind = None
        if first.kind == "name" and self.peek_at(1).text == "=" and self.peek_at(1).kind == "op":
            bind = self.expect_name("a name")
            self.expect_op("=")
        target = None
        if self.peek_at(1).kind == "op" and self.peek_at(1).text == ".":
            target = self.expect_name("an address space")
            self.expect_op(".")
        func = self.expect_name("a call")
        self.expect_op("(")
        args = self.arguments()
        expect = self.expectation() if self.accept("=") else None
        self.expect_end()
        return Call(line, text, func, tuple(args), target, bind, expect)

    def arguments(self) -> list[Expr]:
        args: list[Expr] = []
        if self.accept(")"):
            return args
        while True:
            args.append(self.argument())
            if self.accept(")"):
                return args
            self.expect_op(",")

    def argument(self) -> Expr:
        if self.peek.kind == "str":
            return Str(_unquote(self.advance().text))
        return self.expr()

    def expectation(self) -> Expect:
        # "-EINVAL", "-1 EINVAL", "-1" or an expression
        if self.peek.text == "-" and self.peek_at(1).kind == "name" \
                and self.peek_at(1).text in ERRNOS:
            self.advance()
            return ExpectErrno(ERRNOS[self.advance().text])
        if self.peek.text == "-" and self.peek_at(1).text == "1" \
                and self.peek_at(2).kind in ("name", "end"):
            self.advance()
            self.advance()
            if self.peek.kind == "end":
                return ExpectErrno(None)
            name = self.advance().text
            if name not in ERRNOS:
                raise _LineError(f"unknown errno {name!r}")
            return ExpectErrno(ERRNOS[name])
        return ExpectValue(self.expr())

    def expr(self, level: int = 0) -> Expr:
        if level == len(self._BINARY_LEVELS):
            return self.unary()
        left = self.expr(level + 1)
        ops = self._BINARY_LEVELS[level]
        while self.peek.kind == "op" and self.peek.text in ops:
            op = self.advance().text
            left = Binary(op, left, self.expr(level + 1))
        return left

    def unary(self) -> Expr:
        if self.peek.kind == "op" and self.peek.text in ("-", "~", "+"):
            op = self.advance().text
            operand = self.unary()
            return operand if op == "+" else Unary(op, operand)
        return self.atom()

    def atom(self) -> Expr:
        token = self.advance()
        if token.kind == "num":
            return Num(parse_number(token.text))
        if token.kind == "name":
            return Name(token.text)
        if token.kind == "op" and token.text == "(":
            inner = self.expr()
            self.expect_op(")")
            return inner
        if token.kind == "str":
            raise _LineError("a string is only allowed as a whole argument")
        raise _LineError(f"expected a number or a name, found {_describe(token)}")


def _describe(token: Token) -> str:
    return "end of line" if token.kind == "end" else repr(token.text)


_DIRECTIVE_RE = re.compile(r"#!\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")


def parse(text: str, path: str = "<scenario>") -> Scenario:
    """Parse and check a scenario; raise :class:`ScenarioError` naming file and line."""
    statements: list[Statement] = []
    directives: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        try:
            if stripped.startswith("#!"):
                _directive(stripped, directives)
                continue
            tokens = tokenize(stripped)
            if tokens[0].kind == "end":
                continue
            statements.append(_LineParser(tokens).statement(number, _strip_comment(stripped)))
        except _LineError as err:
            raise ScenarioError(path, number, str(err)) from None
    scenario = _build(path, statements, directives)
    check(scenario)
    return scenario


def parse_file(path: str | os.PathLike[str]) -> Scenario:
    return parse(Path(path).read_text(), str(path))


def _strip_comment(text: str) -> str:
    tokens = tokenize(text)
    return text[: tokens[-1].col].rstrip() if tokens else text


def _directive(text: str, directives: dict[str, str]) -> None:
    match = _DIRECTIVE_RE.fullmatch(text)
    if match is None:
        raise _LineError("a directive is written '#! key: value'")
    key, value = match.group(1), match.group(2)
    if key not in ("profile", "layout", "base"):
        raise _LineError(f"unknown directive {key!r} (known: base, layout, profile)")
    if key in directives:
        raise _LineError(f"directive {key!r} given twice")
    if key == "layout" and value not in LAYOUTS:
        raise _LineError(f"unknown layout {value!r} (known: {', '.join(LAYOUTS)})")
    if key == "profile":
        from vmamodel.profiles import PROFILES

        if value not in PROFILES:
            raise _LineError(f"unknown profile {value!r} (known: {', '.join(sorted(PROFILES))})")
    if key == "base":
        tokens = tokenize(value)
        if tokens[0].kind != "num" or tokens[1].kind != "end":
            raise _LineError(f"base must be a number, not {value!r}")
        parse_number(tokens[0].text)
    directives[key] = value


def _build(path: str, statements: list[Statement], directives: dict[str, str]) -> Scenario:
    base = directives.get("base")
    return Scenario(
        path=path,
        statements=tuple(statements),
        profile=directives.get("profile"),
        layout=directives.get("layout", "arena"),
        base=None if base is None else parse_number(base),
    )


# ---------------------------------------------------------------------------------------------
# Static checks: names, arity and the kind of every argument


def check(scenario: Scenario) -> None:
    """Resolve every name against what earlier lines bound, and check arguments' kinds."""
    kinds: dict[str, Kind] = {}
    for statement in scenario.statements:
        if isinstance(statement, Marker):
            continue
        try:
            _check_call(statement, kinds)
        except _LineError as err:
            raise ScenarioError(scenario.path, statement.line, str(err)) from None


def _check_call(call: Call, kinds: dict[str, Kind]) -> None:
    spec = CALLS.get(call.func)
    if spec is None:
        raise _LineError(f"unknown call {call.func!r} (known: {', '.join(sorted(CALLS))})")
    if call.target is not None:
        if not spec.on_space:
            raise _LineError(f"{call.func}() is not called on an address space")
        if kinds.get(call.target) is not Kind.SPACE:
            _require_name(call.target, kinds)
            raise _LineError(f"{call.target!r} is not an address space (bind one with fork())")
    nargs = len(call.args)
    if not spec.required <= nargs <= len(spec.params):
        raise _LineError(_arity_message(call.func, spec, nargs))
    for param, arg in zip(spec.params, call.args, strict=False):
        _check_arg(call.func, param, arg, kinds)
    if call.expect is not None:
        _check_expect(call.func, spec, call.expect, kinds)
    if call.bind is not None:
        _check_bindable(call.bind)
        if spec.result is Kind.VOID:
            raise _LineError(f"{call.func}() returns no value to bind to {call.bind!r}")
        kinds[call.bind] = spec.result


def _arity_message(func: str, spec: CallSpec, nargs: int) -> str:
    names = ", ".join(p.name if p.default is None else f"[{p.name}]" for p in spec.params)
    return f"{func}({names}) takes {_count(spec)} arguments, {nargs} given"


def _count(spec: CallSpec) -> str:
    if spec.required == len(spec.params):
        return str(spec.required)
    return f"{spec.required} to {len(spec.params)}"


def _check_bindable(name: str) -> None:
    if name in CONSTANTS or name in RESERVED or name in CALLS:
        raise _LineError(f"cannot bind {name!r}: it is a reserved name")


def _require_name(name: str, kinds: dict[str, Kind]) -> Kind:
    if name in CONSTANTS or name == "BASE":
        return Kind.INT
    kind = kinds.get(name)
    if kind is None:
        raise _LineError(f"unknown name {name!r}")
    return kind


def _check_arg(func: str, param: Param, arg: Expr, kinds: dict[str, Kind]) -> None:
    if param.kind is Kind.STR:
        if not isinstance(arg, Str):
            raise _LineError(f"{func}(): {param.name} must be a string in double quotes")
        return
    if param.kind is Kind.TOUCH and isinstance(arg, Name) and arg.ident in TOUCH_WORDS:
        return
    if param.kind is Kind.FD and isinstance(arg, Name) and kinds.get(arg.ident) is Kind.FILE:
        return
    kind = _expr_kind(arg, kinds)
    if kind is not Kind.INT:
        raise _LineError(f"{func}(): {param.name} must be {param.kind.value}, not {kind.value}")


def _expr_kind(expr: Expr, kinds: dict[str, Kind]) -> Kind:
    """The kind of an expression; arithmetic is only defined on numbers."""
    if isinstance(expr, Num):
        return Kind.INT
    if isinstance(expr, Str):
        return Kind.STR
    if isinstance(expr, Name):
        return _require_name(expr.ident, kinds)
    operands = (expr.operand,) if isinstance(expr, Unary) else (expr.left, expr.right)
    for operand in operands:
        kind = _expr_kind(operand, kinds)
        if kind is not Kind.INT:
            name = operand.ident if isinstance(operand, Name) else "a string"
            raise _LineError(f"{name!r} is {kind.value}, not a number")
    return Kind.INT


def _check_expect(func: str, spec: CallSpec, expect: Expect, kinds: dict[str, Kind]) -> None:
    if isinstance(expect, ExpectErrno):
        return
    if spec.result in (Kind.FILE, Kind.SPACE):
        raise _LineError(f"{func}() returns {spec.result.value}: only an errno can be expected")
    _expr_kind(expect.expr, kinds)


# ---------------------------------------------------------------------------------------------
# Backends


class Space(Protocol):
    """An address space of the model or of the host.

    The executor calls the system-call methods by the call's name (``mmap``, ``munmap``,
    ``mremap``...), so a backend that lacks one fails only the steps that use it.
    """

    def maps(self) -> str: ...
    def smaps(self) -> str: ...


class Backend(Protocol):
    """Makes the address spaces and files of one side of a comparison."""

    name: str

    def new_space(self) -> Space: ...
    def adopt(self, space: Space) -> None:
        """Take charge of a space made by fork() (to close it with the backend)."""
    def memfd_create(self, name: str, size: int) -> File: ...
    def open_file(self, path: str, flags: int, size: int) -> File: ...
    def close(self) -> None: ...


def _new_devices() -> Any:
    from vmamodel.drivers.devices import Devices

    return Devices()


@dataclass
class ModelBackend:
    """The model: ``vmamodel.AddressSpace`` under a kernel profile."""

    profile: str | None = None
    files: FileStore | None = None
    name: str = "model"
    #: Extra AddressSpace keywords, e.g. ``host_model_kwargs()`` when compared with a host.
    config: dict[str, Any] = field(default_factory=dict)
    #: The built-in driver devices (vmamodel.drivers.devices) that ``open`` reaches by path.
    devices: Any = field(default_factory=_new_devices)

    def new_space(self) -> Space:
        import vmamodel

        kwargs = dict(self.config)
        if self.profile is not None:
            kwargs["profile"] = self.profile
        space: Space = vmamodel.AddressSpace(**kwargs)
        return space

    def adopt(self, space: Space) -> None:
        return None

    def memfd_create(self, name: str, size: int) -> File:
        from vmamodel import memfd_create

        return memfd_create(name, size)

    def open_file(self, path: str, flags: int, size: int) -> File:
        from vmamodel import open_file
        from vmamodel.drivers.devices import is_device_path

        if is_device_path(path):
            device: File = self.devices.open(path, flags)
            return device
        if self.files is None:
            return open_file(os.path.join("/tmp/vmamodel", path), flags, size)
        real = self.files.create(path, size)
        st = os.stat(real)
        dev = (os.major(st.st_dev), os.minor(st.st_dev))
        return open_file(real, flags, size, dev=dev, ino=st.st_ino)

    def close(self) -> None:
        return None

    def ledger_lines(self) -> list[str]:
        """A summary of every ledger of the built-in drivers the run opened."""
        from vmamodel.drivers.devices import ledger_summary

        return [ledger_summary(ledger) for ledger in self.devices.ledgers()]


@dataclass
class HostBackend:
    """The oracle: ``vmamodel.HostAddressSpace`` confined to an arena of the real kernel."""

    files: FileStore
    arena: tuple[int, int] = (DEFAULT_BASE, DEFAULT_ARENA_SIZE)
    name: str = "host"
    _spaces: list[Space] = field(default_factory=list)

    def new_space(self) -> Space:
        import vmamodel

        space: Space = vmamodel.HostAddressSpace(arena=self.arena)
        self._spaces.append(space)
        return space

    def adopt(self, space: Space) -> None:
        self._spaces.append(space)

    def memfd_create(self, name: str, size: int) -> File:
        from vmamodel import memfd_create

        return memfd_create(name, size)

    def open_file(self, path: str, flags: int, size: int) -> File:
        from vmamodel.drivers.devices import is_device_path
        from vmamodel.host import real_file

        if is_device_path(path):
            raise RuntimeError(f"{path}: the built-in drivers exist only in the model")
        file: File = real_file(self.files.create(path, size), flags)
        return file

    def close(self) -> None:
        # Processes behind host spaces must not outlive the comparison.
        for space in self._spaces:
            closer = getattr(space, "close", None)
            if callable(closer):
                closer()
        self._spaces.clear()


class FileStore:
    """Real files that ``open("name", ...)`` refers to: one per name, created at first use."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def create(self, name: str, size: int) -> str:
        path = self.directory / Path(name).name
        if not path.exists():
            with open(path, "wb") as handle:
                handle.truncate(size)
        return str(path)


# ---------------------------------------------------------------------------------------------
# Results of a run


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one call gave: a value, an errno, or a crash of the backend (a Python exception)."""

    value: int | None = None
    errno: int = 0
    shown: str = "0"
    crash: str | None = None

    @property
    def ok(self) -> bool:
        return self.errno == 0 and self.crash is None

    def describe(self) -> str:
        """strace style: ``0x100000000000``, ``0``, ``-1 EINVAL`` or ``crashed: ...``."""
        if self.crash is not None:
            return f"crashed: {self.crash}"
        if self.errno:
            return f"-1 {errno_name(self.errno)}"
        return self.shown


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The maps (and smaps) text of one live address space after a step."""

    space: str
    maps: str
    smaps: str | None = None


@dataclass(frozen=True, slots=True)
class StepRecord:
    statement: Statement
    outcome: Outcome | None = None
    snapshots: tuple[Snapshot, ...] = ()
    events: tuple[Event, ...] = ()
    #: why the expectation written on the line was not met
    failed_expectation: str | None = None

    @property
    def line(self) -> int:
        return self.statement.line


@dataclass
class Run:
    scenario: Scenario
    backend: str
    steps: list[StepRecord] = field(default_factory=list)
    error: ScenarioError | None = None
    #: one line per built-in driver the run used that keeps a ledger (model only)
    ledgers: list[str] = field(default_factory=list)

    @property
    def failed_expectations(self) -> list[StepRecord]:
        return [s for s in self.steps if s.failed_expectation is not None]

    @property
    def crashed(self) -> bool:
        return any(s.outcome is not None and s.outcome.crash is not None for s in self.steps)


# ---------------------------------------------------------------------------------------------
# Executor


@dataclass(frozen=True, slots=True)
class _Failed:
    """The value of a name whose binding call failed."""

    line: int
    what: str


@dataclass(slots=True)
class _SpaceRef:
    label: str
    space: Space
    alive: bool = True


Value = int | _Failed | _SpaceRef | Any  # Any: a File of the backend

MAIN = "main"


@dataclass
class ExecOptions:
    base: int = DEFAULT_BASE
    arena_size: int = DEFAULT_ARENA_SIZE
    smaps: bool = True
    trace: bool = False


class Executor:
    """Runs a checked scenario on one backend; never raises for the scenario's own errors."""

    def __init__(self, scenario: Scenario, backend: Backend, options: ExecOptions) -> None:
        self.scenario = scenario
        self.backend = backend
        self.options = options
        self.env: dict[str, Value] = {}
        self.spaces: list[_SpaceRef] = []

    @property
    def arena(self) -> tuple[int, int]:
        return self.options.base, self.options.base + self.options.arena_size

    def run(self) -> Run:
        run = Run(self.scenario, self.backend.name)
        try:
            self.spaces.append(_SpaceRef(MAIN, self.backend.new_space()))
            for statement in self.scenario.statements:
                record = self.step(statement)
                run.steps.append(record)
                if record.outcome is not None and record.outcome.crash is not None:
                    break
        except ScenarioError as err:
            run.error = err
        ledger_lines = getattr(self.backend, "ledger_lines", None)
        if callable(ledger_lines):
            run.ledgers = list(ledger_lines())
        return run

    def step(self, statement: Statement) -> StepRecord:
        if isinstance(statement, Marker):
            return StepRecord(statement, None, self.snapshots())
        with self._events() as events:
            outcome = self.call(statement)
        failed = self._expectation(statement, outcome)
        return StepRecord(statement, outcome, self.snapshots(), tuple(events), failed)

    @contextmanager
    def _events(self) -> Iterator[list[Event]]:
        """Collect the trace of every live model space (hosts have no tracer)."""
        events: list[Event] = []
        unsubscribe: list[Callable[[], None]] = []
        if self.options.trace:
            for ref in self.spaces:
                tracer = getattr(ref.space, "tracer", None)
                if tracer is not None:
                    unsubscribe.append(tracer.subscribe(events.append))
        try:
            yield events
        finally:
            for undo in unsubscribe:
                undo()

    def snapshots(self) -> tuple[Snapshot, ...]:
        out = []
        for ref in self.spaces:
            if not ref.alive:
                continue
            maps = self._confine_maps(ref.space.maps())
            smaps = self._confine_smaps(ref.space.smaps()) if self.options.smaps else None
            out.append(Snapshot(ref.label, maps, smaps))
        return tuple(out)

    # -- one call -------------------------------------------------------------------------

    def call(self, call: Call) -> Outcome:
        spec = CALLS[call.func]
        args = [self.eval_arg(param, arg, call.line)
                for param, arg in zip(spec.params, call.args, strict=False)]
        args += [p.default for p in spec.params[len(args):]]
        space = self._space(call) if spec.on_space else None
        if space is not None:
            self._check_layout(call, args)
        try:
            result = self._invoke(call.func, space, args)
        except OSError as err:
            outcome = Outcome(None, err.errno or errno_mod.EIO)
        except Exception as err:  # a backend bug: keep it as the step's result
            outcome = Outcome(None, 0, crash=f"{type(err).__name__}: {err}")
        else:
            outcome = self._success(call, spec, result)
            self._bind(call, result if spec.result in (Kind.FILE, Kind.SPACE) else outcome.value)
            return outcome
        if call.bind is not None:
            self.env[call.bind] = _Failed(call.line, outcome.describe())
        return outcome

    def _invoke(self, func: str, ref: _SpaceRef | None, args: list[Any]) -> Any:
        if ref is None:
            if func == "memfd_create":
                return self.backend.memfd_create(args[0], args[1])
            return self.backend.open_file(args[0], args[1], args[2])
        space = ref.space
        if func == "exit":
            # The host oracle ends its process with close(); the model has exit().
            ender: Callable[[], Any] | None = getattr(space, "exit", None) \
                or getattr(space, "close", None)
            if ender is None:
                raise AttributeError(f"{type(space).__name__} has neither exit() nor close()")
            ender()
            ref.alive = False
            return 0
        if func == "mmap":
            addr, length, prot, flags, fd, offset = args
            file = None if isinstance(fd, int) else fd
            args = [addr, length, prot, flags, file, offset]
        if func == "touch":
            args = [args[0], bool(args[1])]
        method: Callable[..., Any] = getattr(space, func)
        return method(*args)

    def _success(self, call: Call, spec: CallSpec, result: Any) -> Outcome:
        if spec.result is Kind.SPACE:
            self.backend.adopt(result)
            label = self._new_label(call.bind or "child")
            self.spaces.append(_SpaceRef(label, result))
            return Outcome(None, 0, label)
        if spec.result is Kind.FILE:
            return Outcome(None, 0, str(result.display_name()))
        value = int(result) if spec.result is Kind.INT else 0
        return Outcome(value, 0, hex(value) if spec.result is Kind.INT else str(value))

    def _new_label(self, name: str) -> str:
        labels = {ref.label for ref in self.spaces}
        label, n = name, 1
        while label in labels:
            n += 1
            label = f"{name}#{n}"
        return label

    def _bind(self, call: Call, value: Any) -> None:
        if call.bind is None:
            return
        if CALLS[call.func].result is Kind.SPACE:
            value = self.spaces[-1]
        self.env[call.bind] = value

    def _space(self, call: Call) -> _SpaceRef:
        ref = self.spaces[0] if call.target is None else self.lookup(call.target, call.line)
        if not isinstance(ref, _SpaceRef):
            raise self.error(call.line, f"{call.target!r} is not an address space")
        if not ref.alive:
            raise self.error(call.line, f"address space {ref.label!r} has exited")
        return ref

    # -- values ---------------------------------------------------------------------------

    def error(self, line: int, message: str) -> ScenarioError:
        return ScenarioError(self.scenario.path, line, message)

    def lookup(self, name: str, line: int) -> Value:
        if name == "BASE":
            return self.options.base
        if name in self.env:
            value = self.env[name]
            if isinstance(value, _Failed):
                raise self.error(
                    line, f"{name!r} has no value: its call on line {value.line} failed "
                    f"({value.what})")
            return value
        if name in CONSTANTS:
            return CONSTANTS[name]
        raise self.error(line, f"unknown name {name!r}")

    def eval_arg(self, param: Param, arg: Expr, line: int) -> Any:
        if isinstance(arg, Str):
            return arg.value
        if param.kind is Kind.TOUCH and isinstance(arg, Name) and arg.ident in TOUCH_WORDS:
            return TOUCH_WORDS[arg.ident]
        if param.kind is Kind.FD and isinstance(arg, Name):
            value = self.lookup(arg.ident, line)
            if not isinstance(value, int):
                return value
        return self.eval_int(arg, line)

    def eval_int(self, expr: Expr, line: int) -> int:
        if isinstance(expr, Num):
            return expr.value
        if isinstance(expr, Name):
            value = self.lookup(expr.ident, line)
            if not isinstance(value, int):
                raise self.error(line, f"{expr.ident!r} is not a number")
            return value
        if isinstance(expr, Unary):
            operand = self.eval_int(expr.operand, line)
            return -operand if expr.op == "-" else ~operand
        if isinstance(expr, Binary):
            return _BINARY_OPS[expr.op](self.eval_int(expr.left, line),
                                        self.eval_int(expr.right, line))
        raise self.error(line, "a string is not a number")

    # -- expectations and layout ----------------------------------------------------------

    def _expectation(self, call: Call, outcome: Outcome) -> str | None:
        expect = call.expect
        if expect is None or outcome.crash is not None:
            return None
        if isinstance(expect, ExpectErrno):
            if outcome.errno and (expect.errno is None or expect.errno == outcome.errno):
                return None
            wanted = "-1" if expect.errno is None else f"-1 {errno_name(expect.errno)}"
            return f"expected {wanted}, got {outcome.describe()}"
        wanted_value = self.eval_int(expect.expr, call.line)
        if outcome.ok and outcome.value == wanted_value:
            return None
        shown = hex(wanted_value) if CALLS[call.func].result is Kind.INT else str(wanted_value)
        return f"expected {shown}, got {outcome.describe()}"

    def _check_layout(self, call: Call, args: Sequence[Any]) -> None:
        if self.scenario.layout != "arena":
            return
        problem = arena_violation(call.func, args, self.arena)
        if problem is not None:
            raise self.error(call.line, f"layout arena: {problem}")

    def _confine_maps(self, text: str) -> str:
        if self.scenario.layout != "arena":
            return text
        return "".join(line for line in text.splitlines(keepends=True)
                       if _in_arena(line, self.arena))

    def _confine_smaps(self, text: str) -> str:
        if self.scenario.layout != "arena":
            return text
        keep = False
        out = []
        for line in text.splitlines(keepends=True):
            if _HEADER_RE.match(line):
                keep = _in_arena(line, self.arena)
            if keep:
                out.append(line)
        return "".join(out)


_BINARY_OPS: dict[str, Callable[[int, int], int]] = {
    "|": lambda a, b: a | b,
    "^": lambda a, b: a ^ b,
    "&": lambda a, b: a & b,
    "<<": lambda a, b: a << b,
    ">>": lambda a, b: a >> b,
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}

_HEADER_RE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) ")


def _in_arena(line: str, arena: tuple[int, int]) -> bool:
    match = _HEADER_RE.match(line)
    if match is None:
        return False
    start, end = int(match.group(1), 16), int(match.group(2), 16)
    return arena[0] <= start and end <= arena[1]


def _escapes(arena: tuple[int, int], start: int, length: int, *, aligned: bool = True,
             huge: bool = False) -> bool:
    """Whether [start, start+length) could touch memory outside the arena.

    Ranges the kernel rejects before looking at any VMA are let through so that their errno
    can be compared: length 0, an unaligned start where the call needs an aligned one
    (``aligned``), a range wrapping past 2**64, a length above TASK_SIZE (``huge``).
    """
    if length == 0 or (aligned and start % constants.PAGE_SIZE):
        return False
    if not aligned:
        length += start % constants.PAGE_SIZE
        start -= start % constants.PAGE_SIZE
    end = start + (length + constants.PAGE_SIZE - 1) // constants.PAGE_SIZE * constants.PAGE_SIZE
    if end > 1 << 64 or (huge and end - start > constants.TASK_SIZE):
        return False
    return not (arena[0] <= start and end <= arena[1])


_ALIGNED_RANGE_CALLS = ("munmap", "mprotect", "madvise")
_ROUNDED_RANGE_CALLS = ("mlock", "mlock2", "munlock")


def arena_violation(func: str, args: Sequence[Any], arena: tuple[int, int]) -> str | None:
    """Why a call would place or change memory outside the arena, or None."""
    lo, hi = arena
    where = f"[{lo:#x}, {hi:#x})"
    if func == "brk":
        # The oracle keeps its child's heap in the top of the arena (host.heap_start).
        return None if args[0] == 0 or lo <= args[0] < hi else (
            f"brk() break {args[0]:#x} must lie inside {where}")
    if func == "mmap":
        addr, length, _prot, flags = args[:4]
        fixed = flags & (constants.MAP_FIXED | constants.MAP_FIXED_NOREPLACE)
        if not lo <= addr < hi or (fixed and _escapes(arena, addr, length, huge=True)):
            return f"mmap() address {addr:#x} must be fixed or hinted inside {where}"
        return None
    if func == "mremap":
        old, old_len, new_len, flags, new_addr = args
        if _escapes(arena, old, max(old_len, new_len, 1)):
            return f"mremap() old range at {old:#x} is not inside {where}"
        if flags & constants.MREMAP_FIXED and _escapes(arena, new_addr, new_len):
            return f"mremap() new range at {new_addr:#x} is not inside {where}"
        return None
    if func in _ALIGNED_RANGE_CALLS + _ROUNDED_RANGE_CALLS:
        aligned = func in _ALIGNED_RANGE_CALLS
        if _escapes(arena, args[0], args[1], aligned=aligned, huge=func == "munmap"):
            return f"{func}() range at {args[0]:#x} is not inside {where}"
        return None
    if func == "touch" and not lo <= args[0] < hi:
        return f"touch() address {args[0]:#x} is not inside {where}"
    return None


def execute(scenario: Scenario, backend: Backend, options: ExecOptions | None = None) -> Run:
    """Run ``scenario`` on ``backend``; scenario mistakes found on the way end up in ``.error``."""
    return Executor(scenario, backend, options or ExecOptions()).run()


def options_for(
    scenario: Scenario, *, base: int | None = None, smaps: bool = True, trace: bool = False
) -> ExecOptions:
    """The options of a run: an explicit base wins over the scenario's ``#! base:``."""
    if base is None:
        base = DEFAULT_BASE if scenario.base is None else scenario.base
    return ExecOptions(base=base, smaps=smaps, trace=trace)
