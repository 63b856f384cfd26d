"""The project's own parser of strace output (never evaluates its input).

Understood (strace 5 and 6 output, with or without ``-f``, ``-o``, ``-X raw``, ``-y``, ``-v``,
``-t``/``-tt``/``-ttt``):

- a pid prefix ``1234 `` (``-f -o FILE``) or ``[pid 1234] `` (``-f`` to stderr), or none (the
  first process: ``default_pid``);
- ``name(args) = result`` lines; ``name(args <unfinished ...>`` then ``<... name resumed>rest``
  pairs of one pid, joined into one call whose entry is the first line and whose exit is the
  second (calls are listed in exit order, as the kernel finished them);
- results ``42``, ``0x7f...``, ``3</path>``, ``-1 ENOMEM (Cannot allocate memory)``, ``?``
  (no result: the thread left, or the call was interrupted), ``? ERESTARTSYS (...)``;
- arguments split at top-level commas only: quotes with backslash escapes, ``{}``, ``[]``,
  ``()``, ``/* comments */`` and ``-y`` paths (``3</a,b)>``) are kept whole;
- signals (``--- SIGCHLD {...} ---``), exits (``+++ exited with 0 +++``, ``+++ killed by ...``)
  and ``strace:`` messages between calls are recorded as notes, never as calls.

Anything else is an error naming the line (:class:`StraceError`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from vmamodel.replay.step import (
    PLAIN_CALL_RE,
    StraceCall,
    arg_int,
    arg_ints,
    call_ints,
    scan_lines,
)

__all__ = [
    "StraceCall",
    "StraceError",
    "StraceLog",
    "arg_fd",
    "arg_int",
    "arg_ints",
    "fd_path",
    "parse_strace",
    "split_args",
    "struct_field",
]

_PID_RE = re.compile(r"(?:\[pid +(\d+)\] |(\d+) +)")
_TIME_RE = re.compile(r"(?:\d+:\d+:\d+(?:\.\d+)?|\d+\.\d+) +")
_NAME_RE = re.compile(r"([a-z_][a-z0-9_]*)\(")
_RESUMED_RE = re.compile(r"<\.\.\. ([a-z_][a-z0-9_]*) resumed>")
_UNFINISHED = " <unfinished ...>"
_EXIT_RE = re.compile(r"\+\+\+ (exited with (-?\d+)|killed by (\w+)[^+]*) \+\+\+")
#: the one-match path of common lines (step.scan_lines)
_PLAIN_CALL_RE = PLAIN_CALL_RE


class StraceError(ValueError):
    """Text that is not strace output; the message names the line."""


@dataclass(slots=True)
class Note:
    """A line between calls: a signal, an exit or a message from strace itself."""

    pid: int
    kind: str  # "signal", "exit" or "strace"
    text: str
    line: int


@dataclass(slots=True)
class StraceLog:
    """The calls of a log in exit order, the notes, and each pid's exit line."""

    calls: list[StraceCall] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    exits: dict[int, int] = field(default_factory=dict)
    #: unfinished calls never resumed (the log ends inside them)
    pending: list[StraceCall] = field(default_factory=list)


# -- argument helpers ---------------------------------------------------------------------------


def _skip_quoted(text: str, i: int) -> int:
    """Index after the closing quote of the string starting at ``text[i]``."""
    n = len(text)
    i += 1
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise ValueError("unterminated string")


def _skip_path(text: str, i: int) -> int:
    """Index after a ``-y`` path ``<...>`` opening at ``text[i]``: it ends at the last ``>``
    before a delimiter that closes an argument (``,``, ``)``, ``]``, ``}``, a space, the end)."""
    n = len(text)
    j = text.find(">", i + 1)
    while j != -1:
        if text.startswith(_DELETED_TAIL, j + 1):
            j += len(_DELETED_TAIL)
        if j + 1 >= n or text[j + 1] in ",)]} ":
            return j + 1
        j = text.find(">", j + 1)
    raise ValueError("unterminated <path>")


_OPEN = {"(": ")", "[": "]", "{": "}"}
#: strace -y marks an unlinked file after the path: ``3</tmp/x>(deleted)``.
_DELETED_TAIL = "(deleted)"


def _scan(text: str, start: int, stop_at_close: bool) -> tuple[list[str], int]:
    """Split ``text[start:]`` at top-level commas. With ``stop_at_close``, stop at the
    unbalanced ``)`` that closes an argument list and return its index."""
    parts: list[str] = []
    stack: list[str] = []
    i = piece = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = _skip_quoted(text, i)
            continue
        if c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated comment")
            i = end + 2
            continue
        if c == "<" and i > start and text[i - 1].isdigit():
            i = _skip_path(text, i)
            continue
        if c in _OPEN:
            stack.append(_OPEN[c])
        elif c in ")]}":
            if not stack:
                if stop_at_close and c == ")":
                    parts.append(text[piece:i].strip())
                    return parts, i
                raise ValueError(f"unbalanced {c!r}")
            if stack.pop() != c:
                raise ValueError(f"mismatched {c!r}")
        elif c == "," and not stack:
            parts.append(text[piece:i].strip())
            piece = i + 1
        i += 1
    if stop_at_close:
        raise ValueError("no closing ')'")
    if stack:
        raise ValueError("unbalanced brackets")
    parts.append(text[piece:].strip())
    return parts, n


def split_args(text: str) -> list[str]:
    """The top-level comma-separated parts of an argument text (empty text: no parts)."""
    if not text.strip():
        return []
    parts, _ = _scan(text, 0, False)
    return parts


def arg_fd(text: str) -> int:
    """The fd number of an fd argument (``3``, ``3</path>``, ``-1``)."""
    return arg_int(text)


def fd_path(text: str) -> str | None:
    """The ``-y`` path of an fd argument or result (``3</usr/lib/libc.so.6>``), else None;
    an unlinked file's path ends in " (deleted)" as in /proc/PID/maps."""
    if text.endswith(">" + _DELETED_TAIL):
        path = fd_path(text[: -len(_DELETED_TAIL)])
        return None if path is None else path + " (deleted)"
    cut = text.find("<")
    if cut <= 0 or not text.endswith(">") or not text[:cut].lstrip("-").isdigit():
        return None
    return _unescape(text[cut + 1:-1])


def _unescape(path: str) -> str:
    """strace's \\xNN / \\NNN escapes of a path; nothing else is interpreted."""
    if "\\" not in path:
        return path
    out = bytearray()
    i = 0
    raw = path.encode("utf-8", "surrogateescape")
    while i < len(raw):
        if raw[i] == 0x5C and i + 1 < len(raw):
            nxt = chr(raw[i + 1])
            if nxt == "x" and i + 3 < len(raw):
                out.append(int(raw[i + 2:i + 4], 16))
                i += 4
                continue
            if nxt.isdigit():
                j = i + 1
                while j < len(raw) and j < i + 4 and chr(raw[j]).isdigit():
                    j += 1
                out.append(int(raw[i + 1:j], 8))
                i = j
                continue
            out.append({"n": 10, "t": 9, "r": 13, "v": 11, "f": 12}.get(nxt, raw[i + 1]))
            i += 2
            continue
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "surrogateescape")


def string_arg(text: str) -> str:
    """The value of a quoted string argument (``"/etc/passwd"``; strace's ``...`` of a
    truncated string is kept out). ValueError when it is not a quoted string."""
    text = text.strip()
    if text.endswith("..."):
        text = text[:-3]
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ValueError(f"not a string: {text!r}")
    return _unescape(text[1:-1])


def struct_field(text: str, name: str) -> str | None:
    """The text of field ``name`` in a struct argument (``{st_size=12, ...}``), else None."""
    body = text.strip()
    if not body.startswith("{") or not body.endswith("}"):
        return None
    for part in split_args(body[1:-1]):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            return value.strip()
    return None


# -- lines ---------------------------------------------------------------------------------------


def _parse_result(text: str) -> tuple[int | None, str | None, str | None]:
    """``= ...`` text after the arguments -> (value, errno name, fd path)."""
    text = text.strip()
    if not text.startswith("="):
        raise ValueError(f"expected '= result', got {text!r}")
    body = text[1:].strip()
    if not body:
        raise ValueError("empty result")
    head, _, tail = body.partition(" ")
    tail = tail.strip()
    error = tail.split(" ", 1)[0] if tail[:1] == "E" else None
    if head == "?":
        return None, error, None
    path = fd_path(head)
    try:
        value = arg_int(head)
    except ValueError:
        raise ValueError(f"bad result {head!r}") from None
    if value < 0 and error is None and tail[:1] == "E":
        error = tail.split(" ", 1)[0]
    return value, error, path


class _Parser:
    def __init__(self, default_pid: int) -> None:
        self.default_pid = default_pid
        self.log = StraceLog()
        self.open: dict[int, tuple[int, str, str]] = {}  # pid -> (line, name, text so far)

    def feed(self, number: int, line: str) -> None:
        text = line.rstrip("\n")
        if not text.strip():
            return
        if text.startswith("strace: "):
            self.log.notes.append(Note(self.default_pid, "strace", text, number))
            return
        pid, rest = self._prefix(text)
        if rest.startswith("--- ") and rest.endswith(" ---"):
            self.log.notes.append(Note(pid, "signal", rest[4:-4], number))
            return
        if rest.startswith("+++ "):
            if not _EXIT_RE.fullmatch(rest):
                raise ValueError(f"unknown exit line {rest!r}")
            self.log.notes.append(Note(pid, "exit", rest, number))
            self.log.exits[pid] = number
            return
        if rest.startswith("<... "):
            self._resumed(pid, number, rest)
            return
        if rest.endswith(_UNFINISHED):
            match = _NAME_RE.match(rest)
            if match is None:
                raise ValueError("unfinished call without a name")
            if pid in self.open:
                raise ValueError(f"pid {pid} starts a call inside an unfinished one")
            self.open[pid] = (number, match.group(1), rest[: -len(_UNFINISHED)])
            return
        self._complete(pid, number, number, rest)

    def _prefix(self, text: str) -> tuple[int, str]:
        match = _PID_RE.match(text)
        pid = self.default_pid
        if match is not None:
            pid = int(match.group(1) or match.group(2))
            text = text[match.end():]
        match = _TIME_RE.match(text)
        if match is not None:
            text = text[match.end():]
        return pid, text

    def _resumed(self, pid: int, number: int, rest: str) -> None:
        match = _RESUMED_RE.match(rest)
        if match is None:
            raise ValueError(f"bad resumed line {rest!r}")
        started = self.open.pop(pid, None)
        if started is None:
            raise ValueError(f"pid {pid} resumes {match.group(1)} that it never started")
        first, name, head = started
        if name != match.group(1):
            raise ValueError(f"pid {pid} resumes {match.group(1)} but started {name}")
        self._complete(pid, first, number, head + rest[match.end():])

    def _complete(self, pid: int, first: int, number: int, text: str) -> None:
        match = _NAME_RE.match(text)
        if match is None:
            raise ValueError(f"not a system call: {text!r}")
        args, close = _scan(text, match.end(), True)
        arguments = () if args == [""] else tuple(args)
        value, error, path = _parse_result(text[close + 1:])
        self.log.calls.append(StraceCall(
            pid, match.group(1), arguments, value, error, path, first, number, text,
            call_ints(arguments),
        ))

    def finish(self) -> StraceLog:
        for pid, (first, name, head) in self.open.items():
            self.log.pending.append(
                StraceCall(pid, name, (), None, None, None, first, first, head)
            )
        return self.log


def parse_strace(
    lines: Iterable[str], *, source: str = "<strace>", default_pid: int = 0
) -> StraceLog:
    """Parse strace output. Raises :class:`StraceError` naming ``source:line`` on text that
    is not strace output."""
    parser = _Parser(default_pid)

    def general(number: int, line: str) -> None:
        try:
            parser.feed(number, line)
        except ValueError as exc:
            raise StraceError(f"{source}:{number}: {exc}") from None

    scan_lines(lines, parser.log.calls, general, default_pid)
    return parser.finish()
