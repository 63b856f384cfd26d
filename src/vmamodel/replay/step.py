"""The replay's per-call work, kept small enough for mypyc to compile (a regular install
does: ``vmamodel.buildinfo.HOT_MODULES``).

- :class:`StraceCall`, the one record of a call, and the parser's hot part: the lines that
  one regular expression takes whole (:func:`scan_lines`), each with its arguments converted
  to integers once, while the log is read (:func:`call_ints`; ``int(text, 0)`` parses and
  never evaluates);
- the handlers of the memory-management calls whose arguments are all integers (mmap,
  munmap, mprotect, mremap, madvise, brk, mlock...), the boundaries each call draws
  (:func:`call_edges`), the page faults a thread took (:func:`take_faults`);
- :class:`Stepper`: one call of a plan on a replay pass, its result compared with the
  recorded one, and the loop that steps until a result differs.

The rest of the replay (planning, threads, files, reports) is ``vmamodel.replay.replay``.
"""

from __future__ import annotations

import errno as errno_mod
import re
from collections.abc import Callable, Container, Iterable
from itertools import repeat
from typing import Any, Final, Protocol, cast

from vmamodel.constants import MAP_ANONYMOUS, PAGE_SIZE
from vmamodel.file import File
from vmamodel.mm import AddressSpace
from vmamodel.syscalls import SyscallEntry

__all__ = [
    "EDGES",
    "MM_HANDLERS",
    "PLAIN_CALL_RE",
    "Stepper",
    "StraceCall",
    "Trail",
    "Unsupported",
    "arg_int",
    "arg_ints",
    "call_edges",
    "call_ints",
    "errno_name",
    "fault_events",
    "scan_lines",
    "span",
    "take_faults",
]

#: strace prints AT_FDCWD as -100 with -X raw, as the name otherwise.
NAMED_INTS: Final = {"NULL": 0, "AT_FDCWD": -100}
_INT_RE: Final = re.compile(r"-?(?:0x[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_OCTAL_RE: Final = re.compile(r"-?0[0-7]+")
#: Most lines of a log in one match: a whole call whose arguments hold nothing that nests or
#: quotes (no quotes, brackets, comments or ``-y`` paths) and are separated by ``, `` alone,
#: and whose result is a plain number, with or without an errno. Any other line takes the
#: general path (``strace._Parser.feed``), which gives the same call for these.
PLAIN_CALL_RE: Final = re.compile(
    r"(?:\[pid +(\d+)\] |(\d+) +)?(?:(?:\d+:\d+:\d+(?:\.\d+)?|\d+\.\d+) +)?"
    r"(([a-z_][a-z0-9_]*)\(((?:[^\s\",()\[\]{}<>/]+(?:, [^\s\",()\[\]{}<>/]+)*)?)\) += "
    r"(-?(?:0x[0-9a-f]+|[1-9][0-9]*|0))(?: (E[A-Z0-9_]+) \([^()\n]*\))?)\n?"
)
#: How much of the argument text a call's one-line description shows.
DESCRIBE_ARGS: Final = 240
PR_SET_VMA: Final = 0x53564D41


class Unsupported(Exception):
    """A call the model cannot replay (yet): the replay stops and names it."""


class StraceCall:
    """One system call as strace showed it.

    ``args`` are the argument texts as printed; ``retval`` the result (-1 with ``error`` set
    for a failure), None for ``?``; ``ret_path`` the ``-y`` path of a returned fd; ``line`` the
    line where the call started and ``end_line`` where its result was printed; ``ints`` the
    arguments as integers (parsed once, with the line), None when one of them is not a number.

    A plain class, not a dataclass: mypyc builds a dataclass through its generated Python
    ``__init__`` (ten times the cost of a native constructor, once per line of a log).
    """

    __slots__ = (
        "args",
        "end_line",
        "error",
        "ints",
        "line",
        "name",
        "pid",
        "raw",
        "ret_path",
        "retval",
    )

    def __init__(
        self, pid: int, name: str, args: tuple[str, ...], retval: int | None,
        error: str | None, ret_path: str | None, line: int, end_line: int, raw: str = "",
        ints: tuple[int, ...] | None = None,
    ) -> None:
        self.pid = pid
        self.name = name
        self.args = args
        self.retval = retval
        self.error = error
        self.ret_path = ret_path
        self.line = line
        self.end_line = end_line
        self.raw = raw
        self.ints = ints

    def _fields(self) -> tuple[object, ...]:
        return (self.pid, self.name, self.args, self.retval, self.error, self.ret_path,
                self.line, self.end_line, self.raw, self.ints)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StraceCall):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable (ints), compared by value

    def __repr__(self) -> str:
        return (f"StraceCall(pid={self.pid!r}, name={self.name!r}, args={self.args!r}, "
                f"retval={self.retval!r}, error={self.error!r}, ret_path={self.ret_path!r}, "
                f"line={self.line!r}, end_line={self.end_line!r}, raw={self.raw!r}, "
                f"ints={self.ints!r})")

    @property
    def interrupted(self) -> bool:
        """The kernel did not finish the call (ERESTART* or no result at all)."""
        return self.retval is None or (self.error or "").startswith("ERESTART")

    @property
    def overlapped(self) -> bool:
        """Entry and exit on different lines: other threads may have run in between."""
        return self.end_line != self.line

    def describe(self) -> str:
        result = "?" if self.retval is None else format_result(self.retval)
        if self.error:
            result += f" {self.error}"
        args = ", ".join(self.args)
        if len(args) > DESCRIBE_ARGS:
            args = args[:DESCRIBE_ARGS] + "..."
        return f"[pid {self.pid}] {self.name}({args}) = {result}"


def format_result(value: int) -> str:
    return hex(value) if value > 0xFFFF else str(value)


# -- arguments ------------------------------------------------------------------------------


def arg_int(text: str) -> int:
    """An integer argument as strace prints it with ``-X raw``: ``NULL``, ``0x1000``, ``-1``,
    ``AT_FDCWD``, ``3</path>`` (the fd), ``0x1|0x2`` (or-ed parts). ValueError otherwise."""
    try:
        # the common case (0x7f..., 4096, -1): int() parses, never evaluates
        return int(text, 0)
    except ValueError:
        pass
    text = text.strip()
    named = NAMED_INTS.get(text)
    if named is not None:
        return named
    cut = text.find("<")
    if cut > 0:
        text = text[:cut]
    if "|" in text:
        value = 0
        for part in text.split("|"):
            value |= arg_int(part)
        return value
    if not _INT_RE.fullmatch(text):
        raise ValueError(f"not an integer: {text!r}")
    return int(text, 8) if _OCTAL_RE.fullmatch(text) else int(text, 0)


def arg_ints(args: tuple[str, ...]) -> tuple[int, ...]:
    """Integer arguments (:func:`arg_int` of each), in one C loop when all are plain numbers
    (``NULL`` included)."""
    try:
        if "NULL" in args:  # mmap's usual address: no exception for it
            return tuple(map(int, [("0" if a == "NULL" else a) for a in args], repeat(0)))
        return tuple(map(int, args, repeat(0)))  # base 0: 0x..., decimal, sign
    except ValueError:
        return tuple([arg_int(a) for a in args])


def call_ints(args: tuple[str, ...], known: dict[str, int] | None = None
              ) -> tuple[int, ...] | None:
    """The arguments as integers when every one is an integer argument, else None.
    ``known``: texts already converted (a log repeats its addresses, lengths and flags:
    a lookup costs a fraction of ``int()``), to which this call's are added."""
    if known is not None:
        ints = tuple(map(known.get, args))
        if None not in ints:
            return ints  # type: ignore[return-value]  # no None in it
    try:
        values = arg_ints(args)
    except ValueError:
        return None
    if known is not None:
        known.update(zip(args, values, strict=True))
    return values


# -- the parser's hot part -------------------------------------------------------------------


#: The parts of :data:`PLAIN_CALL_RE`, each alone: a text that one of them takes is taken
#: by the same part of the whole pattern.
_PID_TEXT_RE: Final = re.compile(r"\d+")
_NAME_TEXT_RE: Final = re.compile(r"[a-z_][a-z0-9_]*")
_ARG_TEXT_RE: Final = re.compile(r"[^\s\",()\[\]{}<>/]+")
_RESULT_TEXT_RE: Final = re.compile(r"-?(?:0x[0-9a-f]+|[1-9][0-9]*|0)")


#: How many whole call texts a :class:`_LineCache` keeps (their memory is bounded; the
#: parts are still looked up beyond it).
CALL_TEXTS: Final = 1 << 16
#: A call as :func:`_common_call` cut it: name, argument texts, their integers (None when one
#: is not an integer), result, the text strace printed (``StraceCall.raw``). The result is
#: typed ``int | None`` (it is never None) so that mypyc keeps the object: an ``int`` item
#: would be unboxed from each cached tuple and boxed anew for every call (an address is
#: a new int object each time).
CommonCall = tuple[str, tuple[str, ...], "tuple[int, ...] | None", "int | None", str]


class _LineCache:
    """What the common lines of a log repeat, each taken by its part of
    :data:`PLAIN_CALL_RE` once: the pids, names and results (with their values), the
    argument texts as integers (``call_ints``'s ``known``: every key is an argument or result
    that the pattern took) and whole call texts after the pid (a program repeats its calls:
    replay_bench.c's 59,872 lines hold 426 distinct ones)."""

    __slots__ = ("calls", "known", "names", "pids", "results")

    def __init__(self) -> None:
        self.known: dict[str, int] = {}
        self.pids: dict[str, int] = {}
        self.names: set[str] = set()
        self.results: dict[str, int] = {}
        self.calls: dict[str, CommonCall] = {}


def _common_call(line: str, number: int, cache: _LineCache, default_pid: int
                 ) -> StraceCall | None:
    """The call of the commonest form of line (``PID  name(args) = result``, or the same
    without the pid; no time, no errno), found with string methods and the known texts of
    ``cache``, or None: then :func:`_plain_call` decides. Every line this takes,
    :data:`PLAIN_CALL_RE` takes whole, with the same groups: the pid ends at the first space,
    and the rest is a known call text or is cut where the pattern cuts it
    (:func:`_cut_call`)."""
    pid = default_pid
    text = line
    space = line.find(" ")
    if space > 0:
        pid_text = line[:space]
        pid = cache.pids.get(pid_text, -1)
        if pid < 0 and _PID_TEXT_RE.fullmatch(pid_text) is not None:
            pid = cache.pids[pid_text] = int(pid_text)
        if pid >= 0:
            start = space + 1
            end = len(line)
            while start < end and line[start] == " ":
                start += 1
            text = line[start:]
        else:
            pid = default_pid  # "name(" with no pid, or another form
    calls = cache.calls
    common = calls.get(text)
    if common is None:
        common = _cut_call(text, cache)
        if common is None:
            return None
        if len(calls) < CALL_TEXTS:
            calls[text] = common
    name, args, ints, result, raw = common
    return StraceCall(pid, name, args, result, None, None, number, number, raw, ints)


def _cut_call(text: str, cache: _LineCache) -> CommonCall | None:
    """``name(args) += result`` (then at most a newline) cut at the first ``(``, the first
    ``)`` (neither may occur before in the pattern's parts) and the ``= `` after its spaces,
    each piece known or taken by its part of :data:`PLAIN_CALL_RE` (``_*_TEXT_RE``); None
    for anything else."""
    open_at = text.find("(")
    if open_at <= 0:
        return None
    name = text[:open_at]
    if name not in cache.names:
        if _NAME_TEXT_RE.fullmatch(name) is None:
            return None  # a time, or not a call's name
        cache.names.add(name)
    close = text.find(")", open_at)
    if close < 0:
        return None
    inner = text[open_at + 1:close]
    args: tuple[str, ...] = tuple(inner.split(", ")) if inner else ()
    known = cache.known
    for arg in args:
        if arg not in known and _ARG_TEXT_RE.fullmatch(arg) is None:
            return None
    end = len(text)
    at = close + 1
    if at >= end or text[at] != " ":
        return None
    while at < end and text[at] == " ":
        at += 1
    if not text.startswith("= ", at):
        return None
    if text.endswith("\n"):
        end -= 1
    result_text = text[at + 2:end]
    result: int | None = cache.results.get(result_text)
    if result is None:
        if _RESULT_TEXT_RE.fullmatch(result_text) is None:
            return None  # an errno, a path, ?...: the pattern decides
        result = cache.results[result_text] = int(result_text, 0)
    return name, args, call_ints(args, known), result, text[:end]


def _plain_call(line: str, number: int, cache: _LineCache, default_pid: int
                ) -> StraceCall | None:
    """The call of a line that :data:`PLAIN_CALL_RE` takes whole, else None."""
    match = PLAIN_CALL_RE.fullmatch(line)
    if match is None:
        return None
    pid_text, other_pid, raw, name, text, result_text, error = match.groups()
    pid_text = pid_text or other_pid
    if pid_text is None:
        pid = default_pid
    else:
        pid = cache.pids.get(pid_text, -1)
        if pid < 0:
            pid = cache.pids[pid_text] = int(pid_text)
    cache.names.add(name)
    known = cache.known
    result = known.get(result_text)
    if result is None:
        result = known[result_text] = int(result_text, 0)
    args: tuple[str, ...] = tuple(text.split(", ")) if text else ()
    return StraceCall(pid, name, args, result, error, None, number, number, raw,
                      call_ints(args, known))


def scan_lines(
    lines: Iterable[str], calls: list[StraceCall], general: Callable[[int, str], None],
    default_pid: int,
) -> None:
    """Append the call of each line that :data:`PLAIN_CALL_RE` takes whole to ``calls``;
    hand every other line, with its number, to ``general`` (the full parser). A line seen
    before (a one-thread program repeats its lines whole: replay_bench.c's 59,910 hold 426
    distinct ones) gives a copy of the call it gave, with its own line number; the other
    common lines are cut with string methods (:func:`_common_call`), the other plain ones
    matched (:func:`_plain_call`)."""
    cache = _LineCache()
    #: line -> the call it gave (its fields but the line numbers are the line's alone)
    seen: dict[str, StraceCall] = {}
    number = 0
    for line in lines:
        number += 1
        first = seen.get(line)
        if first is not None:
            calls.append(StraceCall(first.pid, first.name, first.args, first.retval,
                                    first.error, None, number, number, first.raw,
                                    first.ints))
            continue
        call = _common_call(line, number, cache, default_pid)
        if call is None:
            call = _plain_call(line, number, cache, default_pid)
            if call is None:
                general(number, line)
                continue
        if len(seen) < CALL_TEXTS:
            seen[line] = call
        calls.append(call)


# -- faults.txt ------------------------------------------------------------------------------

#: perf's events of one thread: ("enter", NR, False, False) or ("fault", address, write,
#: kernel-mode)
FaultEvent = tuple[str, int, bool, bool]
#: How many distinct lines :func:`fault_events` keeps with their events (memory bounded).
FAULT_TEXTS: Final = 1 << 16


def fault_events(text: str, source: str) -> dict[int, list[FaultEvent]]:
    """faults.txt: ``TID enter NR`` and ``TID fault ADDRESS ERROR_CODE [k]`` lines (fields
    split at whitespace, numbers as ``int`` reads them, blank lines skipped) -> each
    thread's events in order. A line read before is looked up (a log's entries repeat:
    replay_bench.c's 63,088 lines hold 501 distinct ones) with its thread's list and its
    event, both kept as the objects made for its first occurrence: compiled, a repeated line
    costs a lookup and an append, no tuple or integer made again. ValueError names
    ``source:line``."""
    # Values are kept as objects (``list[Any]``, ``object``): typed as FaultEvent, mypyc
    # would unbox each cached tuple and box a new one for every line.
    events: dict[int, list[Any]] = {}
    seen: dict[str, tuple[list[Any], object]] = {}
    number = 0
    for line in text.splitlines():
        number += 1
        read = seen.get(line)
        if read is None:
            parts = line.split()
            if not parts:
                continue
            try:
                tid, event = _fault_line(parts)
            except (ValueError, IndexError):
                raise ValueError(f"{source}:{number}: not a fault line: {line!r}") from None
            thread = events.get(tid)
            if thread is None:
                thread = events[tid] = []
            boxed: object = event
            if len(seen) < FAULT_TEXTS:
                seen[line] = (thread, boxed)
            thread.append(boxed)
            continue
        read[0].append(read[1])
    return cast("dict[int, list[FaultEvent]]", events)


def _fault_line(parts: list[str]) -> tuple[int, FaultEvent]:
    """The thread and event of one line's fields (ValueError, IndexError: not a line)."""
    tid = int(parts[0])
    kind = parts[1]
    if kind == "enter" and len(parts) == 3:
        return tid, ("enter", int(parts[2]), False, False)
    if kind == "fault" and len(parts) in (4, 5):
        code = int(parts[3], 16)
        return tid, ("fault", int(parts[2], 16), bool(code & 2), len(parts) == 5)
    raise ValueError(kind)


# -- boundaries: where a call may have cut or joined VMAs -------------------------------------


#: a length rounded up to whole pages is (length + _PAGE_LESS) & _PAGE_ROUND (written out in
#: the edges of the common calls: one call fewer a step)
_PAGE_LESS: Final = PAGE_SIZE - 1
_PAGE_ROUND: Final = ~(PAGE_SIZE - 1)


def _page_up(length: int) -> int:
    return (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def _range_edges(call: StraceCall, value: int | None) -> tuple[int, ...]:
    ints = call.ints
    if ints is None:
        return ()
    addr = ints[0]
    return addr, addr + ((ints[1] + _PAGE_LESS) & _PAGE_ROUND)


def _mmap_edges(call: StraceCall, value: int | None) -> tuple[int, ...]:
    ints = call.ints
    if value is None or ints is None:
        return ()
    return value, value + ((ints[1] + _PAGE_LESS) & _PAGE_ROUND)


def _mremap_edges(call: StraceCall, value: int | None) -> tuple[int, ...]:
    ints = call.ints
    if value is None or ints is None:
        return ()
    old = ints[0]
    return (old, old + ((ints[1] + _PAGE_LESS) & _PAGE_ROUND), value,
            value + ((ints[2] + _PAGE_LESS) & _PAGE_ROUND))


def _brk_edges(call: StraceCall, value: int | None) -> tuple[int, ...]:
    return () if value is None else (value,)


def _prctl_edges(call: StraceCall, value: int | None) -> tuple[int, ...]:
    if len(call.args) > 3 and arg_int(call.args[0]) == PR_SET_VMA:
        addr, length = arg_int(call.args[2]), arg_int(call.args[3])
        return addr, addr + _page_up(length)
    return ()


EdgesOf = Callable[[StraceCall, "int | None"], tuple[int, ...]]

#: name -> the addresses where a call of that name may have cut or joined VMAs
EDGES: Final[dict[str, EdgesOf]] = {
    **dict.fromkeys(("munmap", "mprotect", "pkey_mprotect", "madvise", "mlock", "mlock2",
                     "munlock", "mseal"), _range_edges),
    "mmap": _mmap_edges,
    "mremap": _mremap_edges,
    "brk": _brk_edges,
    "prctl": _prctl_edges,
}


def call_edges(call: StraceCall, value: int | None) -> tuple[int, ...]:
    """The addresses where this call may have cut or joined VMAs."""
    edges = EDGES.get(call.name)
    if edges is None:
        return ()
    try:
        return edges(call, value)
    except (ValueError, IndexError):
        return ()


def span(call: StraceCall, value: int | None) -> tuple[int, int] | None:
    """The address range a call took effect on (None: no range, or no result)."""
    if value is None or value < 0:
        return None
    edges = call_edges(call, value)
    return (min(edges), max(edges) + 1) if edges else None


# -- handlers: the memory-management calls of integer arguments ------------------------------


class Run(Protocol):
    """What a step needs of a replay pass (``replay._Run``)."""

    model: AddressSpace
    trail: Trail
    faults: int

    def mapped_file(self, call: StraceCall, fd: int, offset: int, length: int) -> File:
        """The model's File for an mmap of ``fd`` (Unsupported when there is none)."""


#: A handler runs one call on the model: the value to compare with the recorded result, or
#: None when there is nothing to compare. (The pass is ``Any``: replay.py's handlers take its
#: own class.)
Handler = Callable[[Any, StraceCall], "int | None"]
FdHandler = Callable[[Any, StraceCall, bool], None]
Fault = tuple[int, bool, bool]  # address, write, kernel-mode


def int_args(call: StraceCall, n: int) -> tuple[int, ...]:
    """At least the first ``n`` arguments as integers (parsed with the line; else now, and
    kept on the call)."""
    ints = call.ints
    if ints is not None and len(ints) >= n:
        return ints
    if len(call.args) < n:
        raise Unsupported(f"{call.name} with {len(call.args)} arguments (expected {n})")
    ints = arg_ints(call.args[:n])
    call.ints = ints
    return ints


def _mmap(run: Run, call: StraceCall) -> int:
    ints = call.ints
    if ints is None or len(ints) < 6:  # else int_args() returns them: no call
        ints = int_args(call, 6)
    length, flags, offset = ints[1], ints[3], ints[5]
    file = None if flags & MAP_ANONYMOUS else run.mapped_file(call, ints[4], offset, length)
    return run.model.mmap(ints[0], length, ints[2], flags, file, offset)


def _munmap(run: Run, call: StraceCall) -> int:
    ints = call.ints
    if ints is None or len(ints) < 2:  # else int_args() returns them: no call
        ints = int_args(call, 2)
    run.model.munmap(ints[0], ints[1])
    return 0


def _mprotect(run: Run, call: StraceCall) -> int:
    ints = call.ints
    if ints is None or len(ints) < 3:  # else int_args() returns them: no call
        ints = int_args(call, 3)
    run.model.mprotect(ints[0], ints[1], ints[2])
    return 0


def _pkey_mprotect(run: Run, call: StraceCall) -> int:
    ints = int_args(call, 4)
    run.model.pkey_mprotect(ints[0], ints[1], ints[2], ints[3])
    return 0


def _pkey_alloc(run: Run, call: StraceCall) -> int:
    ints = int_args(call, 2)
    return run.model.pkey_alloc(ints[0], ints[1])


def _pkey_free(run: Run, call: StraceCall) -> int:
    run.model.pkey_free(int_args(call, 1)[0])
    return 0


def _mremap(run: Run, call: StraceCall) -> int:
    # recorded raw (-e raw=mremap): all five arguments, new_address included
    ints = call.ints
    if len(call.args) > 4:
        if ints is None or len(ints) < 5:
            ints = int_args(call, 5)
        new_addr = ints[4]
    else:
        if ints is None or len(ints) < 4:
            ints = int_args(call, 4)
        new_addr = 0
    return run.model.mremap(ints[0], ints[1], ints[2], ints[3], new_addr)


def _madvise(run: Run, call: StraceCall) -> int:
    ints = call.ints
    if ints is None or len(ints) < 3:  # else int_args() returns them: no call
        ints = int_args(call, 3)
    run.model.madvise(ints[0], ints[1], ints[2])
    return 0


def _brk(run: Run, call: StraceCall) -> int:
    return run.model.brk(int_args(call, 1)[0])


def _mlock(run: Run, call: StraceCall) -> int:
    ints = int_args(call, 2)
    run.model.mlock(ints[0], ints[1])
    return 0


def _mlock2(run: Run, call: StraceCall) -> int:
    ints = int_args(call, 3)
    run.model.mlock2(ints[0], ints[1], ints[2])
    return 0


def _munlock(run: Run, call: StraceCall) -> int:
    ints = int_args(call, 2)
    run.model.munlock(ints[0], ints[1])
    return 0


def _mlockall(run: Run, call: StraceCall) -> int:
    run.model.mlockall(int_args(call, 1)[0])
    return 0


def _munlockall(run: Run, call: StraceCall) -> int:
    run.model.munlockall()
    return 0


def _mseal(run: Run, call: StraceCall) -> int:
    ints = int_args(call, 3)
    run.model.mseal(ints[0], ints[1], ints[2])
    return 0


#: The memory-management calls of integer arguments: name -> handler (replay.SUPPORTED
#: holds these and the others).
MM_HANDLERS: Final[dict[str, Handler]] = {
    "mmap": _mmap,
    "munmap": _munmap,
    "mprotect": _mprotect,
    "pkey_mprotect": _pkey_mprotect,
    "pkey_alloc": _pkey_alloc,
    "pkey_free": _pkey_free,
    "mremap": _mremap,
    "madvise": _madvise,
    "brk": _brk,
    "mlock": _mlock,
    "mlock2": _mlock2,
    "munlock": _munlock,
    "mlockall": _mlockall,
    "munlockall": _munlockall,
    "mseal": _mseal,
}


def take_faults(run: Run, faults: list[Fault]) -> None:
    """Page faults as the program took them: a user access, or the kernel's access to a
    user address (copy_to_user); one that the kernel answered with a signal (or that lands
    outside every VMA) changes nothing."""
    model = run.model
    limit = model.task_size
    for address, write, _kernel in faults:
        if address >= limit:
            continue
        try:
            model.touch(address, write)
        except OSError:
            continue
    run.faults += len(faults)


def errno_name(exc: OSError) -> str:
    return errno_mod.errorcode.get(exc.errno or 0, str(exc.errno))


# -- the step -------------------------------------------------------------------------------


#: What a step does with a call, by its name (``Stepper.by_name``): fd-table bookkeeping,
#: its handler called through the table, or one of the commonest calls run by a native
#: call of SyscallEntry's entry point (the handler's work written out: no call through the
#: table, no integer unboxed and boxed again) when its arguments are integers and the model
#: is an AddressSpace (which does not override them).
_FD: Final = 1
_HANDLER: Final = 2
_MUNMAP: Final = 3
_MPROTECT: Final = 4
_MADVISE: Final = 5
_MMAP: Final = 6  # anonymous ones only (a file's needs its description)
_MREMAP: Final = 7
#: the direct kind of each handler of step.py's own
_DIRECT: Final = {"munmap": _MUNMAP, "mprotect": _MPROTECT, "madvise": _MADVISE,
                  "mmap": _MMAP, "mremap": _MREMAP}


def _name_kinds(handlers: dict[str, Handler], fd_handlers: dict[str, FdHandler]
                ) -> dict[str, int]:
    """Per call name: ``_FD``; the direct kind of its handler when the table has step.py's
    own; else ``_HANDLER``."""
    kinds: dict[str, int] = {}
    for name, handler in handlers.items():
        own = MM_HANDLERS.get(name)
        kinds[name] = _HANDLER if own is None or handler is not own else _DIRECT.get(
            name, _HANDLER)
    for name in fd_handlers:
        kinds[name] = _FD
    return kinds


class Stepper:
    """Runs the calls of a plan (in exit order, by index) on a replay pass and compares each
    result with the recorded one."""

    def __init__(
        self, calls: list[StraceCall], faults_before: list[list[Fault] | None],
        handlers: dict[str, Handler], fd_handlers: dict[str, FdHandler],
        skip_failed: frozenset[str],
    ) -> None:
        self.calls = calls
        self.faults_before = faults_before
        self.handlers = handlers
        self.fd_handlers = fd_handlers
        #: calls that, failed, changed nothing and are not run (those the model lacks)
        self.skip_failed = skip_failed
        #: what a step does with a call of each name (``_FD`` ... ``_MREMAP``)
        self.by_name = _name_kinds(handlers, fd_handlers)
        #: counted by :meth:`advance`: the calls run on the model (not the fd bookkeeping),
        #: of which those with no recorded result (not compared)
        self.replayed = 0
        self.interrupted = 0
        #: the position :meth:`advance` is at (where an Unsupported call stopped it)
        self.position = 0
        #: per call: 1 when it runs on the model (not fd bookkeeping); 1 when it does and
        #: has no recorded result
        self.on_model = [0 if call.name in fd_handlers else 1 for call in calls]
        self.unanswered = [
            1 if flag and call.retval is None else 0
            for call, flag in zip(calls, self.on_model, strict=True)
        ]

    def step(self, run: Run, index: int) -> tuple[bool, int | None, OSError | None]:
        """Run the call at ``index`` of the plan, after the faults its thread took before
        it: (matches, model value, model error). Bookkeeping calls match."""
        trail = run.trail
        trail.stepper = self
        result = self._step(run, _direct_model(run), trail, index)
        trail.ran.append([index])
        return result

    def _step(self, run: Run, direct: SyscallEntry | None, trail: Trail, index: int
              ) -> tuple[bool, int | None, OSError | None]:
        """:meth:`step`; ``direct``: the pass's model when the common calls may be run by
        a native call of its entry points (:func:`_direct_model`), else None. The caller
        adds ``index`` to ``trail.ran`` once the step returned."""
        call = self.calls[index]
        faults = self.faults_before[index]
        if faults:
            take_faults(run, faults)
        name = call.name
        retval = call.retval
        kind = self.by_name.get(name, _HANDLER)
        if kind == _FD:
            if retval is not None and retval >= 0:
                self.fd_handlers[name](run, call, False)
            return True, None, None
        if not self._model_runs(call):
            return True, None, None
        # the argument objects as parsed (typed Any: compiled, no int unboxed and reboxed)
        ints: tuple[Any, ...] | None = call.ints
        value: int | None
        try:
            if direct is None or kind == _HANDLER or ints is None:
                value = self.handlers[name](run, call)
            elif kind == _MUNMAP and len(ints) >= 2:
                SyscallEntry.munmap(direct, ints[0], ints[1])
                value = 0
            elif kind == _MPROTECT and len(ints) >= 3:
                SyscallEntry.mprotect(direct, ints[0], ints[1], ints[2])
                value = 0
            elif kind == _MADVISE and len(ints) >= 3:
                SyscallEntry.madvise(direct, ints[0], ints[1], ints[2])
                value = 0
            elif kind == _MMAP and len(ints) >= 6 and ints[3] & MAP_ANONYMOUS:
                value = SyscallEntry.mmap(direct, ints[0], ints[1], ints[2], ints[3], None,
                                          ints[5])
            elif kind == _MREMAP and len(call.args) > 4 and len(ints) >= 5:
                # recorded raw (-e raw=mremap): all five arguments, new_address included
                value = SyscallEntry.mremap(direct, ints[0], ints[1], ints[2], ints[3],
                                            ints[4])
            elif kind == _MREMAP and len(call.args) <= 4 and len(ints) >= 4:
                value = SyscallEntry.mremap(direct, ints[0], ints[1], ints[2], ints[3], 0)
            else:
                value = self.handlers[name](run, call)
        except OSError as exc:
            trail.raised.add(index)  # no boundary drawn
            # a failure matches a recorded failure with the same errno (or no result)
            same = retval is None or (retval < 0 and call.error == errno_name(exc))
            return same, None, exc
        except NotImplementedError as exc:
            raise Unsupported(f"{name}: not in the model ({exc})") from None
        if retval is None:
            trail.values[index] = value
            return True, value, None
        if value is None or value != retval:
            trail.values[index] = value  # the boundaries are the model's
        if retval < 0 and call.error:
            return False, value, None
        return value is None or value == retval, value, None

    def _runs_handler(self, call: StraceCall) -> bool:
        """Whether a step runs the call on the model (fd-table bookkeeping never does)."""
        return self.by_name.get(call.name, _HANDLER) != _FD and self._model_runs(call)

    def _model_runs(self, call: StraceCall) -> bool:
        """Whether a call that is not fd-table bookkeeping runs on the model: not one
        interrupted by ERESTART* (undone, and retried as a new call), nor a failure of a
        kind that changes nothing (``skip_failed``)."""
        retval = call.retval
        if retval is None:
            return not call.error
        return not (retval < 0 and call.name in self.skip_failed)

    def steps(self, run: Run, order: list[int], upto: int) -> None:
        """Run the calls at positions ``0..upto-1`` of ``order``, whatever their results."""
        direct = _direct_model(run)
        trail = run.trail
        trail.stepper = self
        done = 0
        try:
            for position in range(upto):
                self._step(run, direct, trail, order[position])
                done = position + 1
        finally:
            trail.ran.append(order[:done])

    def advance(self, run: Run, order: list[int], position: int
                ) -> tuple[int, int | None, OSError | None]:
        """Run the calls of ``order`` from ``position`` on, counting them, until one's
        result differs: (its position, model value, model error), or (len(order), None,
        None) when none does. An Unsupported call stops it at :attr:`position`."""
        direct = _direct_model(run)
        trail = run.trail
        trail.stepper = self
        end = len(order)
        start = counted = position
        try:
            while position < end:
                ok, value, exc = self._step(run, direct, trail, order[position])
                counted = position + 1
                if not ok:
                    self.position = position
                    return position, value, exc
                position += 1
            self.position = end
            return end, None, None
        except Unsupported:
            self.position = position
            raise
        finally:
            trail.ran.append(order[start:counted])
            self._count(order, start, counted)

    def _count(self, order: list[int], start: int, stop: int) -> None:
        """Count the calls at positions ``start..stop-1`` of ``order`` that ran on the
        model, and those of them that had no recorded result (per-call flags made once)."""
        on_model = self.on_model
        unanswered = self.unanswered
        if start == 0 and stop == len(order) == len(on_model):
            # all of a permutation of the plan (the usual single pass): the totals
            self.replayed += sum(on_model)
            self.interrupted += sum(unanswered)
            return
        replayed = interrupted = 0
        for position in range(start, stop):
            index = order[position]
            replayed += on_model[index]
            interrupted += unanswered[index]
        self.replayed += replayed
        self.interrupted += interrupted

    def edges(self, trail: Trail) -> dict[int, StraceCall]:
        """Address -> the last call of the pass whose range began or ended there
        (:func:`call_edges` of each call the pass ran, in its order, with the model's
        value: the recorded result unless :attr:`Trail.values` has another; none for a
        call that failed on the model or was not run on it)."""
        edges: dict[int, StraceCall] = {}
        calls = self.calls
        values = trail.values
        raised = trail.raised
        for indexes in trail.ran:
            for index in indexes:
                call = calls[index]
                if index in raised or not self._runs_handler(call):
                    continue
                for edge in call_edges(call, values.get(index, call.retval)):
                    edges[edge] = call
        return edges


class Trail:
    """What one replay pass ran, from which the boundaries its calls drew are worked out
    when asked (:meth:`edges`; only ``explain`` asks): drawing them at every step cost a
    tenth of the compiled replay. ``ran``: the plan indexes run, in order, in slices;
    ``values``: the model's value of each call whose value is not its recorded result;
    ``raised``: the calls that failed on the model."""

    __slots__ = ("raised", "ran", "stepper", "values")

    def __init__(self) -> None:
        self.ran: list[list[int]] = []
        self.values: dict[int, int | None] = {}
        self.raised: set[int] = set()
        #: the Stepper that ran them (it knows the plan's calls)
        self.stepper: Stepper | None = None

    def edges(self) -> dict[int, StraceCall]:
        """Address -> the last call whose range began or ended there
        (:meth:`Stepper.edges`)."""
        return {} if self.stepper is None else self.stepper.edges(self)


def _direct_model(run: Run) -> SyscallEntry | None:
    """The pass's model when it is an AddressSpace (whose class leaves mmap, munmap,
    mprotect, madvise and mremap to SyscallEntry: a native call of those is the call
    itself), else None (a subclass may override them: every call goes through its
    handler)."""
    model = run.model
    if type(model) is not AddressSpace or not _entries_inherited():
        return None
    return model


def _entries_inherited() -> bool:
    """Whether AddressSpace still takes the direct calls' methods from SyscallEntry (a tool
    may patch the class: vmamodel.fuzz's planted bug replaces mmap and mprotect)."""
    return all(getattr(AddressSpace, name) is getattr(SyscallEntry, name) for name in _DIRECT)


# -- the plan: which calls a replay runs, and the faults before each -------------------------


def select_calls(
    calls: list[StraceCall], exec_lines: dict[int, int | None], start_line: int,
    end_line: int | None, names: frozenset[str],
) -> tuple[list[StraceCall], list[StraceCall]]:
    """The calls of the tasks that share the mm (``exec_lines``: pid -> the line of the exec
    after which its calls are another mm's, or None): those that left before the start
    snapshot, and those named in ``names`` from the start to the end snapshot."""
    pre: list[StraceCall] = []
    chosen: list[StraceCall] = []
    # a pid's entry is looked up when the pid changes (a log has runs of one pid's calls;
    # compiled, each lookup boxes the pid)
    last_pid = -1
    shares = False
    exec_line: int | None = None
    for call in calls:
        pid = call.pid
        if pid != last_pid:
            last_pid = pid
            shares = pid in exec_lines
            exec_line = exec_lines[pid] if shares else None
        if not shares:
            continue
        if exec_line is not None and call.end_line > exec_line:
            continue
        if call.end_line <= start_line:
            pre.append(call)
        elif (end_line is None or call.line < end_line) and call.name in names:
            chosen.append(call)
    return pre, chosen


def named(calls: list[StraceCall], names: frozenset[str]) -> list[StraceCall]:
    """The calls of the given names, in their order (one pass, natively when compiled)."""
    return [call for call in calls if call.name in names]


def by_thread(calls: list[StraceCall], wanted: Container[int] | None = None
              ) -> dict[int, list[StraceCall]]:
    """Each thread's calls in entry order (``calls`` is in exit order; ``wanted``: only
    these threads). A thread whose calls never overlap (most) needs no sort."""
    threads: dict[int, list[StraceCall]] = {}
    last_pid = -1
    thread: list[StraceCall] | None = None
    for call in calls:
        pid = call.pid
        if pid != last_pid:  # looked up when the pid changes (see select_calls)
            last_pid = pid
            if wanted is not None and pid not in wanted:
                thread = None
            else:
                thread = threads.get(pid)
                if thread is None:
                    thread = threads[pid] = []
        if thread is not None:
            thread.append(call)
    for thread in threads.values():
        last = -1
        for call in thread:
            if call.line < last:
                thread.sort(key=_entry_line)  # stable: as sorted() of the exit order
                break
            last = call.line
    return threads


def _entry_line(call: StraceCall) -> int:
    return call.line


def index_by_line(calls: list[StraceCall]) -> list[int]:
    """Entry line -> the index in ``calls`` of the call that entered there, -1 for the
    other lines (a line starts at most one call): a list lookup, where a dict keyed by
    ``id()`` cost a boxed integer a call."""
    last = 0
    for call in calls:  # a loop, not max() of a generator: native when compiled
        if call.line > last:
            last = call.line
    at_line = [-1] * (last + 1)
    for index, call in enumerate(calls):
        at_line[call.line] = index
    return at_line


def attach_thread_faults(
    calls: list[StraceCall], numbers: dict[str, int], events: list[FaultEvent],
    planned: list[int], start_line: int, faults_before: list[list[Fault] | None],
    tail_faults: list[Fault],
) -> int:
    """Put one thread's page faults before the calls they preceded (``calls``: the thread's
    calls in entry order; ``events``: perf's, in order; ``planned``: entry line -> the
    index of the replayed call that entered there, -1 for the others,
    :func:`index_by_line`). strace shows a subsequence of the entries perf saw, so each
    entry either is the next call shown (same number) or is skipped. Returns the number of
    entries skipped inside the replayed part."""
    count = len(calls)
    index = 0
    unmatched = 0
    pending: list[Fault] = []
    for kind, value, write, kernel in events:
        if kind == "fault":
            pending.append((value, write, kernel))
            continue
        if index < count and numbers.get(calls[index].name, -1) == value:
            call = calls[index]
            index += 1
            line = call.line
            position = planned[line] if line < len(planned) else -1
            if position >= 0:
                if pending:
                    before = faults_before[position]
                    if before is None:
                        faults_before[position] = pending
                    else:
                        before.extend(pending)
            elif call.line > start_line:
                tail_faults.extend(pending)
            pending = []
        elif index < count and calls[index].line > start_line:
            unmatched += 1
    return unmatched
