"""The scenario language's words: names, constants, errno names and tokens."""

from __future__ import annotations

import errno as errno_mod
import re
from typing import TYPE_CHECKING, NamedTuple

from vmamodel import constants

if TYPE_CHECKING:
    pass


LAYOUTS = ("arena", "process")


class ScenarioError(Exception):
    """A mistake in a scenario: reported as ``path:line: message``."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


class LineError(Exception):
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

# Each match is one token and the blanks before it (fewer matches than blanks as tokens).
_TOKEN_RE = re.compile(
    r"""
    [ \t]*
    (?:
    (?P<comment>\#.*)
  | (?P<num>0[xX][0-9a-fA-F]+[KMG]?|0[oO][0-7]+[KMG]?|0[bB][01]+[KMG]?|[0-9]+[KMG]?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<op><<|>>|[-+*|&^~(),=.])
    )
    """,
    re.VERBOSE,
)
_SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class Token(NamedTuple):
    """One token (a tuple: a scenario line has a few dozen and a file may have 100,000 lines)."""

    kind: str  # "num", "name", "str", "op", "end"
    text: str
    col: int


def tokenize(text: str) -> list[Token]:
    """Split one line into tokens; a comment ends the line."""
    tokens: list[Token] = []
    pos = 0
    for match in _TOKEN_RE.finditer(text):
        if match.start() != pos:
            break
        kind = match.lastgroup or ""
        col = match.start(kind)
        if kind == "comment":
            tokens.append(Token("end", "", col))  # at the comment
            return tokens
        tokens.append(Token(kind, match.group(kind), col))
        pos = match.end()
    rest = text[pos:]
    if rest.strip(" \t"):
        bad = pos + len(rest) - len(rest.lstrip(" \t"))
        raise LineError(f"unexpected character {text[bad]!r}")
    tokens.append(Token("end", "", len(text.rstrip(" \t")) if pos < len(text) else pos))
    return tokens


#: The integers of a scenario are what a 64-bit register holds, read signed or unsigned.
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1


def parse_number(text: str) -> int:
    scale = _SUFFIX.get(text[-1], 1)
    digits = text[:-1] if scale != 1 else text
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        raise LineError(f"bad number {text!r}: write octal as 0o{digits[1:]}")
    if len(digits) > 70:  # 64 binary digits and a prefix: anything longer cannot fit
        raise LineError(f"number {_shorten(text)} does not fit in 64 bits")
    value = int(digits, 0) * scale
    if value > INT_MAX:
        raise LineError(f"number {_shorten(text)} does not fit in 64 bits")
    return value


def _shorten(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"


def unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])
