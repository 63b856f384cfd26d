"""Parsing a scenario file into its syntax tree, and the static checks on it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from vmamodel.inject import FAILURE_POINTS
from vmamodel.profiles import PROFILES
from vmamodel.scenario.ast import (
    CALLS,
    Binary,
    Call,
    CallSpec,
    Expect,
    ExpectErrno,
    ExpectValue,
    Expr,
    Kind,
    Marker,
    Name,
    Num,
    Param,
    Scenario,
    Statement,
    Str,
    Unary,
)
from vmamodel.scenario.tokens import (
    CONSTANTS,
    ERRNOS,
    LAYOUTS,
    RESERVED,
    TOUCH_WORDS,
    LineError,
    ScenarioError,
    Token,
    parse_number,
    tokenize,
    unquote,
)

if TYPE_CHECKING:
    pass


# Parser

#: Bounds that keep a line's syntax tree shallow enough for the recursive checker and
#: evaluator: parentheses and unary operators nested, and tokens on one line.
MAX_NESTING = 32
MAX_TOKENS = 256


class _LineParser:
    """Recursive descent over the tokens of one line (C operator precedence)."""

    def __init__(self, tokens: list[Token]) -> None:
        if len(tokens) > MAX_TOKENS:
            raise LineError(f"line too long: more than {MAX_TOKENS} tokens")
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

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
        token = self.tokens[self.pos]
        if token.kind == "op" and token.text == text:
            self.pos += 1
            return True
        return False

    def expect_op(self, text: str) -> None:
        if not self.accept(text):
            raise LineError(f"expected '{text}', found {_describe(self.peek)}")

    def expect_name(self, what: str) -> str:
        token = self.advance()
        if token.kind != "name":
            raise LineError(f"expected {what}, found {_describe(token)}")
        return token.text

    def expect_end(self) -> None:
        if self.peek.kind != "end":
            raise LineError(f"unexpected {_describe(self.peek)}")

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
            return Str(unquote(self.advance().text))
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
                raise LineError(f"unknown errno {name!r}")
            return ExpectErrno(ERRNOS[name])
        return ExpectValue(self.expr())

    def expr(self, min_level: int = 0) -> Expr:
        """Precedence climbing: operators of level >= ``min_level``, left-associative."""
        left = self.unary()
        tokens = self.tokens
        while True:
            token = tokens[self.pos]
            level = _LEVEL_OF.get(token.text, -1) if token.kind == "op" else -1
            if level < min_level:
                return left
            self.pos += 1  # an operator, never the end
            left = Binary(token.text, left, self.expr(level + 1))

    def unary(self) -> Expr:
        token = self.tokens[self.pos]
        if token.kind == "op" and token.text in ("-", "~", "+"):
            op = self.advance().text
            self._nest()
            operand = self.unary()
            self.depth -= 1
            return operand if op == "+" else Unary(op, operand)
        return self.atom()

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise LineError(f"expression nested more than {MAX_NESTING} deep")

    def atom(self) -> Expr:
        token = self.advance()
        if token.kind == "num":
            return Num(parse_number(token.text))
        if token.kind == "name":
            return Name(token.text)
        if token.kind == "op" and token.text == "(":
            self._nest()
            inner = self.expr()
            self.expect_op(")")
            self.depth -= 1
            return inner
        if token.kind == "str":
            raise LineError("a string is only allowed as a whole argument")
        raise LineError(f"expected a number or a name, found {_describe(token)}")


def _describe(token: Token) -> str:
    return "end of line" if token.kind == "end" else repr(token.text)


DIRECTIVES = ("base", "check", "inject", "layout", "profile")
#: C precedence, loosest first: | ^ & (<< >>) (+ -) *.
_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (("|",), ("^",), ("&",), ("<<", ">>"),
                                               ("+", "-"), ("*",))
_LEVEL_OF = {op: level for level, ops in enumerate(_BINARY_LEVELS) for op in ops}

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
            text_only = stripped[: tokens[-1].col].rstrip()  # without its comment
            statements.append(_LineParser(tokens).statement(number, text_only))
        except LineError as err:
            raise ScenarioError(path, number, str(err)) from None
    scenario = _build(path, statements, directives)
    check(scenario)
    return scenario


def parse_file(path: str | os.PathLike[str]) -> Scenario:
    """Parse a scenario file; a file that cannot be read or is not UTF-8 text is a
    ScenarioError naming it (and the line of the first bad byte)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ScenarioError(str(path), 1, f"cannot read: {err.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ScenarioError(
            str(path), line, f"not UTF-8 text (byte {data[err.start]:#04x})") from None
    return parse(text, str(path))


def _directive(text: str, directives: dict[str, str]) -> None:
    match = _DIRECTIVE_RE.fullmatch(text)
    if match is None:
        raise LineError("a directive is written '#! key: value'")
    key, value = match.group(1), match.group(2)
    if key not in DIRECTIVES:
        raise LineError(f"unknown directive {key!r} (known: {', '.join(sorted(DIRECTIVES))})")
    if key in directives:
        raise LineError(f"directive {key!r} given twice")
    if key == "layout" and value not in LAYOUTS:
        raise LineError(f"unknown layout {value!r} (known: {', '.join(LAYOUTS)})")
    if key == "profile":

        if value not in PROFILES:
            raise LineError(f"unknown profile {value!r} (known: {', '.join(sorted(PROFILES))})")
    if key == "base":
        tokens = tokenize(value)
        if tokens[0].kind != "num" or tokens[1].kind != "end":
            raise LineError(f"base must be a number, not {value!r}")
        parse_number(tokens[0].text)
    if key == "inject":
        parse_inject(value)
    if key == "check" and value != "lifecycle":
        raise LineError(f"unknown check {value!r} (known: lifecycle)")
    directives[key] = value


_INJECT_RE = re.compile(r"([a-z_]+)(?:\s+nth\s*=\s*(\d+))?")


def parse_inject(value: str) -> tuple[str, int]:
    """``"mapped nth=2"`` -> ``("mapped", 2)``; nth defaults to 1."""
    match = _INJECT_RE.fullmatch(value)
    if match is None:
        raise LineError(f"inject is written 'POINT' or 'POINT nth=N', not {value!r}")
    point, nth = match.group(1), int(match.group(2) or 1)
    if point not in FAILURE_POINTS:
        raise LineError(f"unknown failure point {point!r} (known: "
                        f"{', '.join(sorted(FAILURE_POINTS))})")
    if nth < 1:
        raise LineError("nth counts from 1")
    return point, nth


def _build(path: str, statements: list[Statement], directives: dict[str, str]) -> Scenario:
    base = directives.get("base")
    return Scenario(
        path=path,
        statements=tuple(statements),
        profile=directives.get("profile"),
        layout=directives.get("layout", "arena"),
        base=None if base is None else parse_number(base),
        inject=parse_inject(directives["inject"]) if "inject" in directives else None,
        check="check" in directives,
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
        except LineError as err:
            raise ScenarioError(scenario.path, statement.line, str(err)) from None


def _check_call(call: Call, kinds: dict[str, Kind]) -> None:
    spec = CALLS.get(call.func)
    if spec is None:
        raise LineError(f"unknown call {call.func!r} (known: {', '.join(sorted(CALLS))})")
    if call.target is not None:
        if not spec.on_space:
            raise LineError(f"{call.func}() is not called on an address space")
        if kinds.get(call.target) is not Kind.SPACE:
            _require_name(call.target, kinds)
            raise LineError(f"{call.target!r} is not an address space (bind one with fork())")
    nargs = len(call.args)
    if not spec.required <= nargs <= len(spec.params):
        raise LineError(_arity_message(call.func, spec, nargs))
    for param, arg in zip(spec.params, call.args, strict=False):
        _check_arg(call.func, param, arg, kinds)
    if call.expect is not None:
        _check_expect(call.func, spec, call.expect, kinds)
    if call.bind is not None:
        _check_bindable(call.bind)
        if spec.result is Kind.VOID:
            raise LineError(f"{call.func}() returns no value to bind to {call.bind!r}")
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
        raise LineError(f"cannot bind {name!r}: it is a reserved name")


def _require_name(name: str, kinds: dict[str, Kind]) -> Kind:
    if name in CONSTANTS or name == "BASE":
        return Kind.INT
    kind = kinds.get(name)
    if kind is None:
        raise LineError(f"unknown name {name!r}")
    return kind


def _check_arg(func: str, param: Param, arg: Expr, kinds: dict[str, Kind]) -> None:
    if param.kind is Kind.STR:
        if not isinstance(arg, Str):
            raise LineError(f"{func}(): {param.name} must be a string in double quotes")
        return
    if param.kind is Kind.TOUCH and isinstance(arg, Name) and arg.ident in TOUCH_WORDS:
        return
    if param.kind is Kind.FD and isinstance(arg, Name) and kinds.get(arg.ident) is Kind.FILE:
        return
    kind = _expr_kind(arg, kinds)
    if kind is not Kind.INT:
        raise LineError(f"{func}(): {param.name} must be {param.kind.value}, not {kind.value}")


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
            raise LineError(f"{name!r} is {kind.value}, not a number")
    return Kind.INT


def _check_expect(func: str, spec: CallSpec, expect: Expect, kinds: dict[str, Kind]) -> None:
    if isinstance(expect, ExpectErrno):
        return
    if spec.result in (Kind.FILE, Kind.SPACE):
        raise LineError(f"{func}() returns {spec.result.value}: only an errno can be expected")
    _expr_kind(expect.expr, kinds)
