"""The detectors: they watch one run (events of every address space, the driver's state, what
each call raised) and need no ledger and no knowledge of the driver.

A :class:`Monitor` is attached to the address spaces of a run and told where each call begins
and ends; :meth:`Monitor.finish` then returns the :class:`Detection` s. The explorer and a
scenario replayed by ``vmamodel run`` (``#! check: lifecycle``) use the same monitor, so a
reproducer shows the same finding as the run it was shrunk from.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmamodel.check.rules import DRIVER_HOOK_POINTS, rule_text
from vmamodel.check.state import (
    Difference,
    Dump,
    describe,
    diff_state,
    direction,
    dump_state,
    growth,
)
from vmamodel.driver_error import DriverError
from vmamodel.events import (
    ActionStep,
    Event,
    FaultInjected,
    HookCall,
    MergeAttempt,
    VmaCreated,
    WarnOn,
)
from vmamodel.inject import Injector
from vmamodel.profiles import NotInProfile

if TYPE_CHECKING:
    from vmamodel.file import File
    from vmamodel.mm import AddressSpace

Key = tuple[str, int]  # (address space label, VMA id)
CHECK_HOOK_WARN = "__vma_check_mmap_hook"
#: Hooks the kernel traces before running them (their effect shows after the event).
PRE_TRACED = frozenset({"close", "open"})
NEW_RANGE_HOOKS = frozenset({"mmap_prepare", "mmap", "mapped", "success_hook"})
_CORE_DIR = Path(__file__).resolve().parent.parent
_TOOL_DIRS = tuple(_CORE_DIR / name for name in ("drivers", "check", "scenario", "cli"))
_HOOK_CALL_RE = re.compile(r"\.(open|close|mapped|may_split|mremap|mprotect|mmap_prepare|mmap)\(")
_POINT_HOOK = {"vm_mremap": "mremap"}
_CALLER_HOOK = {"call_prepare_hook": "mmap_prepare", "call_success_hook": "success_hook",
                "call_error_hook": "error_hook"}


class WatchingInjector(Injector):
    """An injector that also tells the monitor when a failure point is reached: every driver
    hook the kernel traces after it ran (mmap_prepare, mmap, mapped...) is preceded by its
    point, so a state change can be pinned on the right hook. Always armed, so that a clean
    run counts how often each point is reached."""

    __slots__ = ("on_check",)

    def __init__(self, on_check: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.on_check = on_check

    def check(self, point: str) -> int:
        if self.on_check is not None:
            self.on_check(point)
        return Injector.check(self, point)


def watching_injector(monitor: Monitor, inject: tuple[str, int] | None) -> WatchingInjector:
    """The injector of a monitored run, with the run's one injected failure (if any)."""
    injector = WatchingInjector(on_check=monitor.before_point)
    injector.armed = True
    if inject is not None:
        injector.add(inject[0], inject[1])
    return injector


@dataclass(frozen=True, slots=True)
class Detection:
    """One thing a run did wrong. ``origin``: "driver", "kernel" (a path on which the kernel
    itself breaks the lifecycle), "if-hook-fails" (only if the driver's hook can really fail
    there) or "model" (the model's own invariants)."""

    kind: str
    hook: str
    rule: str
    origin: str
    step: int
    detail: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.kind, self.hook, self.rule, self.origin

    def line(self) -> str:
        """One line for ``vmamodel run``."""
        return (f"finding [{self.origin}] {self.kind} in {self.hook}: {rule_text(self.rule)}"
                + (f" ({self.detail})" if self.detail else ""))


@dataclass(slots=True)
class _Change:
    step: int
    hook: str
    #: how much the counts grew (+) or shrank (-) with this change
    delta: int = 0


@dataclass
class Monitor:
    """Watches one run. Call :meth:`watch` for the driver's file before its first mmap,
    :meth:`attach` for every address space, :meth:`begin`/:meth:`end` around each call and
    :meth:`exception` for what a call raised other than OSError."""

    files: list[tuple[File, Dump]] = field(default_factory=list)
    spaces: dict[str, AddressSpace] = field(default_factory=dict)
    step: int = -1
    calls: list[str] = field(default_factory=list)
    not_in_profile: str | None = None
    crash: tuple[int, str, str, Key | None] | None = None  # step, hook, text, vma
    invariant: str | None = None
    created: dict[Key, int] = field(default_factory=dict)
    closed: set[Key] = field(default_factory=set)
    mapped_ok: dict[Key, int] = field(default_factory=dict)
    mapped_failed: dict[Key, int] = field(default_factory=dict)
    action_failed: dict[Key, int] = field(default_factory=dict)
    close_unmapped: list[tuple[int, Key]] = field(default_factory=list)
    kernel_drops: list[tuple[int, Key]] = field(default_factory=list)
    compat_prepared: dict[Key, int] = field(default_factory=dict)
    compat_drops: list[tuple[int, Key]] = field(default_factory=list)
    legacy_failed: set[int] = field(default_factory=set)
    lifecycle: list[Detection] = field(default_factory=list)
    faults: list[tuple[int, str]] = field(default_factory=list)
    merges: set[int] = field(default_factory=set)
    warns: list[tuple[int, str, str]] = field(default_factory=list)  # step, message, hook
    private: dict[Key, object] = field(default_factory=dict)
    private_lost: list[tuple[int, Key]] = field(default_factory=list)
    changes: list[_Change] = field(default_factory=list)
    #: hooks and action steps that succeeded (how far a failing mmap got)
    progress: int = 0
    _last: list[Dump] = field(default_factory=list)
    _state_fns: list[Callable[[File], object] | None] = field(default_factory=list)
    _pending: str | None = None
    _last_hook: tuple[str, Key | None] = ("-", None)
    _expected: str | None = None

    # -- set-up ---------------------------------------------------------------------------

    def watch(self, file: File, state: Callable[[File], object] | None = None) -> None:
        """Remember the driver's state before its first mmap: ``state(file)`` if the factory
        provides one, else ``file.private_data``."""
        self._state_fns.append(state)
        self.files.append((file, self._dump(len(self.files), file)))
        self._last.append(self.files[-1][1])

    def _dump(self, index: int, file: File) -> Dump:
        state = self._state_fns[index]
        return dump_state(state(file) if state is not None else file.private_data)

    def attach(self, label: str, mm: AddressSpace) -> None:
        self.spaces[label] = mm
        mm.debug = True  # the model's invariants after every call
        mm.tracer.subscribe(lambda event: self.event(label, event))

    # -- a call ---------------------------------------------------------------------------

    def begin(self, name: str) -> None:
        self.step += 1
        self.calls.append(name)

    def end(self) -> None:
        self._settle("-")
        for key, step in self.mapped_ok.items():
            if step == self.step and key not in self.created and key not in self.closed:
                self.kernel_drops.append((step, key))
        for key, step in self.compat_prepared.items():
            if step == self.step and key not in self.created and key not in self.closed:
                self.compat_drops.append((step, key))
        self._track_private()

    def before_point(self, point: str) -> None:
        """A failure point is reached: before a driver hook, note what changed so far."""
        if point in DRIVER_HOOK_POINTS:
            self._settle(self._pending or "-")
            self._expected = _POINT_HOOK.get(point, point)

    def exception(self, exc: BaseException) -> None:
        """A call raised something other than OSError."""
        if isinstance(exc, DriverError) and isinstance(exc.original, NotInProfile):
            exc = exc.original  # the driver does not build under this profile
        if isinstance(exc, NotInProfile):
            self.not_in_profile = str(exc)
            return
        if isinstance(exc, DriverError):  # the model names the hook that misbehaved
            original = exc.original
            self.crash = (self.step, exc.hook, f"{type(original).__name__}: {original}",
                          self._last_hook[1])
            return
        frames = traceback.extract_tb(exc.__traceback__)
        if isinstance(exc, AssertionError) and any(f.name == "validate_mm" for f in frames):
            self.invariant = str(exc)
            return
        # Compiled (mypyc) modules leave no frames: then the hook whose failure point was
        # reached last without its trace event, else the last hook traced.
        hook = _hook_of(frames) or self._expected or self._last_hook[0]
        text = f"{type(exc).__name__}: {exc}"
        self.crash = (self.step, hook, text, self._last_hook[1])

    # -- events ---------------------------------------------------------------------------

    def event(self, label: str, event: Event) -> None:
        if self._pending is not None:
            self._settle(self._pending)
        if isinstance(event, HookCall):
            self._hook(label, event)
        elif isinstance(event, VmaCreated):
            self.created.setdefault((label, event.vma_id), self.step)
        elif isinstance(event, ActionStep):
            self.progress += not event.errno
            if event.step == "complete" and event.errno:
                match = re.search(r"vma=(\d+)", event.detail)
                if match:
                    self.action_failed[(label, int(match.group(1)))] = self.step
        elif isinstance(event, FaultInjected):
            self.faults.append((self.step, event.point))
        elif isinstance(event, MergeAttempt):
            if event.merged and event.op == "new_range" and self.calls[-1] == "mmap":
                self.merges.add(self.step)
        elif isinstance(event, WarnOn):
            self.warns.append((self.step, event.message, self._last_hook[0]))

    def _hook(self, label: str, event: HookCall) -> None:
        key = None if event.vma_id is None else (label, event.vma_id)
        self.progress += not event.errno
        self._expected = None
        self._last_hook = (event.hook, key)
        if key is not None and key in self.closed:
            self.lifecycle.append(Detection("use-after-close", event.hook, "use-after-close",
                                            "driver", self.step, f"VMA #{key[1]}"))
        if event.hook == "close" and key is not None:
            self.closed.add(key)
            if key not in self.mapped_ok and (key in self.mapped_failed
                                               or key in self.action_failed):
                self.close_unmapped.append((self.step, key))
        if event.hook == "mapped" and key is not None:
            self._mapped(key, event.errno)
        if event.hook == "mmap" and event.errno:
            self.legacy_failed.add(self.step)
        if event.hook == "mmap_prepare" and key is not None and not event.errno:
            self.compat_prepared[key] = self.step  # the compat layer, on a VMA not in the tree
        if event.hook in PRE_TRACED:
            self._pending = event.hook
        else:
            self._settle(event.hook)

    def _mapped(self, key: Key, err: int) -> None:
        if err:
            self.mapped_failed[key] = self.step
            return
        created = self.created.get(key)
        if key in self.mapped_ok or (created is not None and created < self.step):
            self.lifecycle.append(Detection("mapped-twice", "mapped", "mapped-twice", "model",
                                            self.step, f"VMA #{key[1]}"))
        self.mapped_ok[key] = self.step

    def _settle(self, hook: str) -> None:
        """Note whether the state changed since the last look, and by which hook."""
        self._pending = None
        now = [self._dump(i, file) for i, (file, _) in enumerate(self.files)]
        if now != self._last:
            delta = sum(growth(diff_state(a, b)) for a, b in zip(self._last, now, strict=True))
            self.changes.append(_Change(self.step, hook, delta))
            self._last = now

    def _track_private(self) -> None:
        for key in list(self.mapped_ok):
            vma = self._find(key)
            if vma is None:
                self.private.pop(key, None)
                continue
            if key not in self.private:
                if vma.vm_private_data is not None and self.mapped_ok[key] == self.step:
                    self.private[key] = vma.vm_private_data
            elif vma.vm_private_data is not self.private[key]:
                self.private_lost.append((self.step, key))
                del self.private[key]

    def _find(self, key: Key) -> Any:
        mm = self.spaces.get(key[0])
        if mm is None:
            return None
        return next((vma for vma in mm.tree if vma.id == key[1]), None)

    # -- the verdict ----------------------------------------------------------------------

    def mappings_gone(self) -> bool:
        """Whether no address space still maps a watched file."""
        files = [file for file, _ in self.files]
        return not any(vma.vm_file is f or _inner_is(vma.vm_file, f)
                       for mm in self.spaces.values() for vma in mm.tree for f in files)

    def finish(self) -> list[Detection]:
        """Everything this run did wrong (call after the last call's :meth:`end`)."""
        if self.not_in_profile is not None:
            return []
        out = list(self.lifecycle)
        if self.invariant is not None:
            out.append(Detection("invariant", "-", "invariant", "model", self.step,
                                 self.invariant))
        out.extend(self._warnings())
        if self.crash is not None:
            out.append(self._crash_detection())
            return _unique(out)
        if self.mappings_gone():
            out.extend(self._state_detections())
        return _unique(out)

    def _warnings(self) -> list[Detection]:
        out = []
        for step, message, hook in self.warns:
            origin = "kernel" if CHECK_HOOK_WARN in message else "driver"
            out.append(Detection("warn", hook, f"warn:{message}", origin, step))
        return out

    def _crash_detection(self) -> Detection:
        """A hook raised something other than OSError (or a ledger flagged a kernel bug):
        named after the VMA it ran on when that VMA's ``mapped`` never succeeded or its
        private data was replaced, else after the failure injected in that call."""
        assert self.crash is not None
        step, hook, text, key = self.crash
        kind, rule = self._crash_cause(step, hook, key)
        return Detection(kind, hook, rule, "driver", step, text)

    def _crash_cause(self, step: int, hook: str, key: Key | None) -> tuple[str, str]:
        unmapped = {k for _, k in self.close_unmapped}
        if hook == "close" and (key in unmapped or (key is None and unmapped)):
            k = key if key is not None else next(iter(unmapped))
            return "close-without-mapped", \
                "fail:mapped" if k in self.mapped_failed else "fail:action_complete"
        if key is not None and any(k == key for _, k in self.private_lost):
            return "private-data-lost", "private-lost"
        fault = next((point for s, point in self.faults if s == step), None)
        return "crash", f"fail:{fault}" if fault is not None else "crash"

    def _state_detections(self) -> list[Detection]:
        diffs: list[Difference] = []
        for index, (file, before) in enumerate(self.files):
            prefix = "state" if self._state_fns[index] is not None else "private_data"
            if len(self.files) > 1:
                prefix = f"file{index}.{prefix}"
            diffs += diff_state(before, self._dump(index, file), prefix)
        if not diffs:
            return []
        step, kind, rule, origin, hook = self._trigger(diffs)
        return [Detection(kind, hook, rule, origin, step, describe(diffs))]

    def _trigger(self, diffs: list[Difference]) -> tuple[int, str, str, str, str]:
        """Which path left the state changed: (step, kind, rule, origin, hook)."""
        flagged = [d for d in diffs if d[0].endswith(".flags")]
        if flagged:
            hook = _flag_hook(flagged[0][2])
            step = self.close_unmapped[0][0] if self.close_unmapped else self.step
            kind, rule = self._crash_cause(step, hook, None)
            return step, kind, rule, "driver", hook
        if self.kernel_drops:
            step, _key = self.kernel_drops[0]
            warned = any(s == step and CHECK_HOOK_WARN in m for s, m, _ in self.warns)
            return step, direction(diffs), "check-hook" if warned else "compat-drop", \
                "kernel", "mapped"
        step = self._trigger_step()
        kind, rule, origin = self._mechanism(step, None)
        if kind == "leak":
            kind = direction(diffs)
        hook = self._changer(step) if rule != "teardown" else self._last_changer(kind)
        if kind == "close-without-mapped":
            hook = "close"
        return step, kind, rule, origin, hook

    def _trigger_step(self) -> int:
        """The first call where something took another path (a fault, a close without
        mapped, a merge, a failed legacy or stacked hook) and a hook changed the driver's
        state; else the first such call; else the last call (teardown)."""
        candidates = sorted({s for s, _ in self.faults} | {s for s, _ in self.close_unmapped}
                            | self.merges
                            | {s for s, _ in self.compat_drops} | self.legacy_failed)
        changed = {change.step for change in self.changes}
        for step in candidates:
            if step in changed:
                return step
        return candidates[0] if candidates else self.step

    def _mechanism(self, step: int, key: Key | None) -> tuple[str, str, str]:
        """(kind, rule, origin) of what happened at ``step`` (to VMA ``key`` if known)."""
        fault = next((point for s, point in self.faults if s == step), None)
        origin = "if-hook-fails" if fault in DRIVER_HOOK_POINTS else "driver"
        unmapped = [k for s, k in self.close_unmapped if s <= step]
        if unmapped and (key is None or key in unmapped):
            k = unmapped[0] if key is None else key
            cause = "mapped" if k in self.mapped_failed else "action_complete"
            if cause == "mapped" and fault != "mapped":
                origin = "driver"  # the driver's own mapped failed
            return "close-without-mapped", f"fail:{cause}", origin
        if fault is not None:
            return "leak", f"fail:{fault}", origin
        if any(s == step for s, _ in self.compat_drops):
            return "leak", "compat-fail", "driver"
        if step in self.legacy_failed:
            return "leak", "legacy-fail", "driver"
        if step in self.merges:
            return "leak", "merge", "driver"
        return "leak", "teardown", "driver"

    def _changer(self, step: int) -> str:
        """The hook that changed the state at ``step``: one run for the new range
        (mmap_prepare, mmap, mapped) first, else the first."""
        hooks = [change.hook for change in self.changes if change.step == step]
        preferred = [hook for hook in hooks if hook in NEW_RANGE_HOOKS]
        return (preferred or hooks or [self._last_changer("")])[0]

    def _last_changer(self, kind: str) -> str:
        """The last hook that moved the state the way it ended up wrong (up for a leak,
        down for an over-release), else the last that changed it."""
        wanted = {"leak": 1, "over-release": -1}.get(kind, 0)
        moved = [c for c in self.changes if wanted == 0 or c.delta * wanted > 0]
        return (moved or self.changes or [_Change(0, "-")])[-1].hook


def _flag_hook(flags: Dump) -> str:
    """The hook a ledger flag names: "NULL dereference of vm_private_data in close"."""
    match = re.search(r" in (\w+)$", flags[-1]) if isinstance(flags, list) and flags else None
    return match.group(1) if match else "-"


def _inner_is(vm_file: object, file: object) -> bool:
    private = getattr(vm_file, "private_data", None)
    return getattr(private, "inner", None) is file


def _hook_of(frames: traceback.StackSummary) -> str | None:
    """The hook a crash came out of: the call in the innermost frame of the model's core."""
    core = [f for f in frames if _is_core(f.filename)]
    if not core:
        return None
    innermost = core[-1]
    match = _HOOK_CALL_RE.search(innermost.line or "")
    if match:
        return match.group(1)
    return _CALLER_HOOK.get(innermost.name)


def _is_core(filename: str) -> bool:
    path = Path(filename).resolve()
    if _CORE_DIR not in path.parents:
        return False
    return not any(tool == path.parent or tool in path.parents for tool in _TOOL_DIRS)


def _unique(detections: list[Detection]) -> list[Detection]:
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for detection in detections:
        if detection.key not in seen:
            seen.add(detection.key)
            out.append(detection)
    return out
