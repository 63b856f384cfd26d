"""Running a checked scenario on one backend, and what the run records."""

from __future__ import annotations

import errno as errno_mod
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from vmamodel import constants
from vmamodel.host.arena import ARENA_BASE, ARENA_SIZE
from vmamodel.scenario.ast import (
    CALLS,
    Binary,
    Call,
    CallSpec,
    ExpectErrno,
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
from vmamodel.scenario.backends import Backend
from vmamodel.scenario.tokens import (
    CONSTANTS,
    INT_MAX,
    INT_MIN,
    TOUCH_WORDS,
    ScenarioError,
    errno_name,
)
from vmamodel.space import SYSCALLS, MmSpace, Traced

if TYPE_CHECKING:
    from vmamodel.events import Event


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
    #: what the lifecycle detectors found (``#! check: lifecycle``, model only)
    findings: list[str] = field(default_factory=list)

    @property
    def failed_expectations(self) -> list[StepRecord]:
        return [s for s in self.steps if s.failed_expectation is not None]

    @property
    def crashed(self) -> bool:
        return any(s.outcome is not None and s.outcome.crash is not None for s in self.steps)


# ---------------------------------------------------------------------------------------------
# Executor


@dataclass(frozen=True, slots=True)
class Failed:
    """The value of a name whose binding call failed."""

    line: int
    what: str


@dataclass(slots=True)
class SpaceRef:
    label: str
    space: MmSpace
    alive: bool = True


Value = int | Failed | SpaceRef | Any  # Any: a File of the backend

MAIN = "main"


#: Called after every step with the step's index, its record and the live address spaces as
#: (label, space) pairs, for a tool that looks at the whole state (vmamodel.show).
Observer = Callable[[int, StepRecord, Sequence[tuple[str, MmSpace]]], None]


#: Which steps keep maps text (see ExecOptions.snapshots).
Snapshots = Literal["every", "shown", "none"]


@dataclass
class ExecOptions:
    """How to run: ``smaps`` renders smaps besides maps; ``trace`` collects the model's events.

    ``snapshots``: "every" keeps the maps (and smaps) of every live space after every step,
    which is what ``diff`` compares; "shown" keeps them only where a run shows them (at a
    marker, or after every call of a scenario without markers) and smaps only where asked
    (``smaps``) or at an ``smaps`` marker, so that a long run stays linear in its length.
    ``on_step(done, total)`` is called after each statement (a progress bar).
    """

    base: int = ARENA_BASE
    arena_size: int = ARENA_SIZE
    smaps: bool = True
    trace: bool = False
    #: None (the default) costs nothing; an observer costs what it does with each step.
    observe: Observer | None = None
    #: Which steps keep maps text: "every" step, the steps a run "shown"s (markers, or every
    #: step when there are none), or "none" (an observer that looks at the spaces itself).
    snapshots: Snapshots = "every"
    on_step: Callable[[int, int], None] | None = None


class Executor:
    """Runs a checked scenario on one backend; never raises for the scenario's own errors."""

    def __init__(self, scenario: Scenario, backend: Backend, options: ExecOptions) -> None:
        self.scenario = scenario
        self.backend = backend
        self.options = options
        self.env: dict[str, Value] = {}
        self.spaces: list[SpaceRef] = []
        self._last_text: dict[tuple[str, str], str] = {}
        # Scenario.has_markers walks the statements: once, not once a step.
        self._has_markers = scenario.has_markers

    @property
    def arena(self) -> tuple[int, int]:
        return self.options.base, self.options.base + self.options.arena_size

    def run(self) -> Run:
        run = Run(self.scenario, self.backend.name)
        enable = getattr(self.backend, "enable_check", None)
        if callable(enable) and (self.scenario.check or self.scenario.inject is not None):
            enable(self.scenario.inject, self.scenario.check)
        try:
            self.spaces.append(SpaceRef(MAIN, self.backend.new_space()))
            total = len(self.scenario.statements)
            on_step = self.options.on_step
            for done, statement in enumerate(self.scenario.statements, start=1):
                record = self.step(statement)
                run.steps.append(record)
                if self.options.observe is not None:
                    self.options.observe(len(run.steps) - 1, record, self.live_spaces())
                if on_step is not None:
                    on_step(done, total)
                if record.outcome is not None and record.outcome.crash is not None:
                    break
        except ScenarioError as err:
            run.error = err
        run.ledgers = self.backend.ledger_lines()
        run.findings = self.backend.findings()
        return run

    def step(self, statement: Statement) -> StepRecord:
        if isinstance(statement, Marker):
            return StepRecord(statement, None, self.snapshots(statement.kind == "smaps"))
        with self._events() as events:
            outcome = self.call(statement)
        failed = self._expectation(statement, outcome)
        shown = self.options.snapshots == "every" or not self._has_markers
        snapshots = self.snapshots() if shown else ()
        return StepRecord(statement, outcome, snapshots, tuple(events), failed)

    @contextmanager
    def _events(self) -> Iterator[list[Event]]:
        """Collect the trace of every live model space (hosts have no tracer)."""
        events: list[Event] = []
        unsubscribe: list[Callable[[], None]] = []
        if self.options.trace:
            for ref in self.spaces:
                if isinstance(ref.space, Traced):
                    unsubscribe.append(ref.space.tracer.subscribe(events.append))
        try:
            yield events
        finally:
            for undo in unsubscribe:
                undo()

    def live_spaces(self) -> list[tuple[str, MmSpace]]:
        """The address spaces that have not exited, as (label, space), oldest first."""
        return [(ref.label, ref.space) for ref in self.spaces if ref.alive]

    def snapshots(self, want_smaps: bool = False) -> tuple[Snapshot, ...]:
        """The maps (and smaps, when the options or ``want_smaps`` ask) of each live space.
        A text equal to the space's previous one is that same string, so that a run that
        keeps every step holds each distinct state once."""
        if self.options.snapshots == "none":
            return ()
        out = []
        with_smaps = self.options.smaps or want_smaps
        for ref in self.spaces:
            if not ref.alive:
                continue
            maps = self._same_as_before(ref.label, "maps", self._confine_maps(ref.space.maps()))
            smaps = None
            if with_smaps:
                smaps = self._same_as_before(
                    ref.label, "smaps", self._confine_smaps(ref.space.smaps()))
            out.append(Snapshot(ref.label, maps, smaps))
        return tuple(out)

    def _same_as_before(self, label: str, kind: str, text: str) -> str:
        key = (label, kind)
        previous = self._last_text.get(key)
        if previous == text:
            return previous
        self._last_text[key] = text
        return text

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
            result = self._monitored(call.func, space, args)
        except OSError as err:
            outcome = Outcome(None, err.errno or errno_mod.EIO)
        except Exception as err:  # a backend bug (or a driver's crash): the step's result
            outcome = Outcome(None, 0, crash=f"{type(err).__name__}: {err}")
        else:
            outcome = self._success(call, spec, result)
            self._bind(call, result if spec.result in (Kind.FILE, Kind.SPACE) else outcome.value)
            return outcome
        if call.bind is not None:
            self.env[call.bind] = Failed(call.line, outcome.describe())
        return outcome

    def _monitored(self, func: str, ref: SpaceRef | None, args: list[Any]) -> Any:
        """_invoke, watched by the backend's lifecycle monitor when it has one."""
        monitor = getattr(self.backend, "monitor", None)
        if monitor is None:
            return self._invoke(func, ref, args)
        monitor.begin(func)
        try:
            return self._invoke(func, ref, args)
        except OSError:
            raise
        except Exception as err:
            monitor.exception(err)
            raise
        finally:
            monitor.end()

    def _invoke(self, func: str, ref: SpaceRef | None, args: list[Any]) -> Any:
        if ref is None:
            if func == "memfd_create":
                return self.backend.memfd_create(args[0], args[1])
            if func == "stacked":
                stacked = getattr(self.backend, "stacked", None)
                if stacked is None:
                    raise RuntimeError(f"{self.backend.name} has no stacked files")
                return stacked(args[0], args[1])
            return self.backend.open_file(args[0], args[1], args[2])
        space = ref.space
        if func == "exit":
            space.exit()
            ref.alive = False
            return 0
        if func == "mmap":
            addr, length, prot, flags, fd, offset = args
            file = None if isinstance(fd, int) else fd
            args = [addr, length, prot, flags, file, offset]
        if func == "touch":
            args = [args[0], bool(args[1])]
        if func not in SYSCALLS:
            raise AttributeError(f"{func}() is not a call of an address space")
        method: Callable[..., Any] = getattr(space, func)
        return method(*args)

    def _success(self, call: Call, spec: CallSpec, result: Any) -> Outcome:
        if spec.result is Kind.SPACE:
            self.backend.adopt(result)
            label = self._new_label(call.bind or "child")
            self.spaces.append(SpaceRef(label, result))
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

    def _space(self, call: Call) -> SpaceRef:
        ref = self.spaces[0] if call.target is None else self.lookup(call.target, call.line)
        if not isinstance(ref, SpaceRef):
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
            if isinstance(value, Failed):
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
            return self._bounded(-operand if expr.op == "-" else ~operand, line)
        if isinstance(expr, Binary):
            left = self.eval_int(expr.left, line)
            right = self.eval_int(expr.right, line)
            if expr.op in ("<<", ">>") and not 0 <= right < 64:
                raise self.error(line, f"shift count {right} is not in [0, 64)")
            return self._bounded(_BINARY_OPS[expr.op](left, right), line)
        raise self.error(line, "a string is not a number")

    def _bounded(self, value: int, line: int) -> int:
        """A value a 64-bit register holds (signed or unsigned), else an error at the line."""
        if not INT_MIN <= value <= INT_MAX:
            raise self.error(line, f"{value:#x} does not fit in 64 bits" if value.bit_length()
                             < 200 else "value does not fit in 64 bits")
        return value

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
    end = start + constants.pfn_up(length) * constants.PAGE_SIZE
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
    scenario: Scenario, *, base: int | None = None, smaps: bool = True, trace: bool = False,
    observe: Observer | None = None,
    snapshots: Snapshots = "every", on_step: Callable[[int, int], None] | None = None,
) -> ExecOptions:
    """The options of a run: an explicit base wins over the scenario's ``#! base:``."""
    if base is None:
        base = ARENA_BASE if scenario.base is None else scenario.base
    return ExecOptions(base=base, smaps=smaps, trace=trace, observe=observe,
                       snapshots=snapshots, on_step=on_step)
