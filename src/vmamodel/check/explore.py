"""The exploration: probe the driver's shape, then run every skeleton once clean and once for
every (failure point, n-th reach) the clean run reached, under each kernel profile.

:func:`execute` runs one call sequence on the model with a :class:`Monitor`; it is also what the
shrinker uses. :func:`run_units` is the one place work is spread over processes.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vmamodel.campaign import Backend as CampaignBackend
from vmamodel.campaign import Failed, Finished, LocalBackend, Shard, ShardContext, run_shards
from vmamodel.check.detectors import Detection, Monitor, watching_injector
from vmamodel.check.skeletons import (
    PROBE_PAGES,
    VARIANTS,
    Shape,
    Skeleton,
    Step,
    mmap,
    random_skeleton,
    skeletons,
)
from vmamodel.check.targets import Target
from vmamodel.constants import PAGE_SIZE
from vmamodel.drivers.devices import Devices
from vmamodel.drivers.stacked import open_stacked
from vmamodel.file import File, memfd_create
from vmamodel.mm import AddressSpace

T = TypeVar("T")
R = TypeVar("R")
Inject = tuple[str, int] | None
#: A step's result when it crashed (raised something other than OSError).
CRASHED = -1000


@dataclass
class Outcome:
    """One run: its monitor, what each step returned (errno, or None: not run) and how often
    each failure point was reached."""

    monitor: Monitor
    results: list[int | None] = field(default_factory=list)
    reached: dict[str, int] = field(default_factory=dict)
    live: list[str] = field(default_factory=list)

    @property
    def detections(self) -> list[Detection]:
        return self.monitor.finish()


class _Run:
    """The state of one run: bound names, live address spaces, the shared injector."""

    def __init__(self, target: Target, profile: str, inject: Inject) -> None:
        self.monitor = Monitor()
        mm = AddressSpace(profile=profile)
        self.injector = watching_injector(self.monitor, inject)
        mm.injector = self.injector
        self.spaces: dict[str, AddressSpace] = {"main": mm}
        self.monitor.attach("space0", mm)
        self.target = target
        self.devices = Devices()  # shared by every open of a built-in device, as in a scenario
        self.env: dict[str, Any] = {"fd": self._open()}

    def _open(self) -> File:
        file = self.target.open(self.devices)
        self.monitor.watch(file, self.target.state_fn())
        return file

    def step(self, step: Step) -> int | None:
        """Run one step: its errno (0: success), CRASHED, or None when it could not run (a
        name it uses is unbound)."""
        if any(name not in self.env and name not in self.spaces for name in step.uses()):
            return None
        self.monitor.begin(step.func)
        try:
            result = self._invoke(step)
        except OSError as err:
            self.monitor.end()
            return err.errno or -1
        except Exception as err:  # a driver's crash, or the model's invariants
            self.monitor.exception(err)
            self.monitor.end()
            return CRASHED
        self.monitor.end()
        if step.bind is not None:
            if isinstance(result, AddressSpace):
                result.injector = self.injector
                self.monitor.attach(f"space{len(self.monitor.spaces)}", result)
                self.spaces[step.bind] = result
            else:
                self.env[step.bind] = result
        return 0

    def _invoke(self, step: Step) -> Any:
        if step.func == "memfd_create":
            return memfd_create(str(step.args[0]), int(step.args[1]))
        if step.func == "open":
            return self._open()
        args: list[Any] = [self.env[a] if isinstance(a, str) else a for a in step.args]
        if step.func == "stacked":
            return open_stacked(args[0], fail_after=args[1])
        mm = self.spaces[step.space]
        if step.func == "exit":
            mm.exit()
            del self.spaces[step.space]
            return None
        if step.func == "mmap" and isinstance(args[4], int):
            args[4] = None  # fd -1 of an anonymous mapping: the model's "no file"
        return getattr(mm, step.func)(*args)

    @property
    def crashed(self) -> bool:
        return self.monitor.crash is not None or self.monitor.invariant is not None \
            or self.monitor.not_in_profile is not None


def execute(target: Target, profile: str, steps: Sequence[Step], inject: Inject) -> Outcome:
    """Run ``steps`` and then the exit of every live address space."""
    run = _Run(target, profile, inject)
    outcome = Outcome(run.monitor)
    for step in steps:
        outcome.results.append(run.step(step))
        if run.crashed:
            break
    else:
        outcome.live = list(run.spaces)
        for name in list(run.spaces):
            run.step(Step("exit", (), name))
            if run.crashed:
                break
    outcome.reached = dict(run.injector.reached)
    return outcome


# ---------------------------------------------------------------------------------------------
# probing the driver's shape


def probe(target: Target, profile: str) -> Shape | str:
    """The driver's :class:`Shape` under ``profile``, or why it has none there (a driver
    using an API the profile lacks would not compile)."""
    size = max(target.open().size // PAGE_SIZE, 0)
    best: tuple[int, int, int, int, int] | None = None  # progress, -order, pages, flags, prot
    lengths: dict[tuple[int, int], list[int]] = {}
    order = 0
    for _name, flags, prot in VARIANTS:
        shape = Shape(1, flags, prot, None, size)
        for pages in PROBE_PAGES:
            order += 1
            outcome = execute(target, profile, [mmap(0, pages, 0, shape)], None)
            if outcome.monitor.not_in_profile is not None:
                return outcome.monitor.not_in_profile
            if outcome.results and outcome.results[0] == 0:
                lengths.setdefault((flags, prot), []).append(pages)
            score = (outcome.monitor.progress, -order, pages, flags, prot)
            if best is None or score[:2] > best[:2]:
                best = score
    for _name, flags, prot in VARIANTS:
        ok = lengths.get((flags, prot))
        if ok:
            longer = [n for n in ok if n >= 3] or [n for n in ok if n >= 2]
            return Shape(ok[0], flags, prot, longer[0] if longer else None, size)
    # Nothing maps: explore with the attempt that got furthest (the most hooks that ran).
    assert best is not None
    return Shape(best[2], best[3], best[4], None, size)


# ---------------------------------------------------------------------------------------------
# one unit of work: a target under a profile


@dataclass(frozen=True, slots=True)
class Unit:
    target: Target
    profile: str
    budget: int = 0
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Hit:
    """A run that detected something."""

    target: Target
    profile: str
    skeleton: Skeleton
    inject: Inject
    detections: tuple[Detection, ...]


@dataclass
class UnitResult:
    unit: Unit
    runs: int = 0
    hits: list[Hit] = field(default_factory=list)
    skipped: str | None = None
    shape: Shape | None = None


def explore_unit(unit: Unit) -> UnitResult:
    """Every skeleton (and ``budget`` random sequences) of one target under one profile."""
    out = UnitResult(unit)
    shape = probe(unit.target, unit.profile)
    if isinstance(shape, str):
        out.skipped = shape
        return out
    out.shape = shape
    plans = skeletons(shape)
    rng = random.Random(f"{unit.seed}:{unit.target.spec}:{unit.profile}")
    plans += [random_skeleton(shape, rng, i) for i in range(unit.budget)]
    for skeleton in plans:
        clean: list[Detection] = []
        for inject, outcome in explore_skeleton(unit.target, unit.profile, skeleton):
            out.runs += 1
            detections = outcome.detections
            if inject is None:
                clean = detections
            else:
                detections = beyond_clean(detections, clean)
            if detections:
                out.hits.append(Hit(unit.target, unit.profile, skeleton, inject,
                                    tuple(detections)))
    return out


#: Kinds that come from comparing the driver's state at the end of a run.
STATE_KINDS = frozenset({"leak", "over-release", "state-not-restored", "close-without-mapped",
                         "private-data-lost", "crash"})


def beyond_clean(detections: list[Detection], clean: list[Detection]) -> list[Detection]:
    """What a run with an injected failure found that its clean run did not: when the clean
    run already ends with the driver's state wrong (or crashed), the failure run's state is
    the same bug seen again, not a finding of the failure path."""
    clean_keys = {d.key for d in clean}
    clean_state = any(d.kind in STATE_KINDS for d in clean)
    return [d for d in detections if d.key not in clean_keys
            and not (clean_state and d.kind in STATE_KINDS)]


def explore_skeleton(target: Target, profile: str,
                     skeleton: Skeleton) -> Iterator[tuple[Inject, Outcome]]:
    """The clean run, then one run per (failure point, n-th reach) the clean run reached."""
    clean = execute(target, profile, skeleton.steps, None)
    yield None, clean
    for point in sorted(clean.reached):
        for nth in range(1, clean.reached[point] + 1):
            yield (point, nth), execute(target, profile, skeleton.steps, (point, nth))


# ---------------------------------------------------------------------------------------------
# the seam where work is spread over processes


def run_units(fn: Callable[[T], R], units: Sequence[T], jobs: int,
              progress: Callable[[], None] | None = None,
              backend: CampaignBackend | None = None) -> list[R]:
    """``[fn(u) for u in units]`` in the order of ``units``: in this process when ``jobs`` is
    1 and no backend is given, else as shards of ``vmamodel.campaign`` (the executor of
    ``vmamodel fuzz``: the local process pool of ``jobs`` workers, or the given backend,
    e.g. Ray). ``fn`` and the units must be picklable (module-level)."""
    if backend is None and (jobs <= 1 or len(units) <= 1):
        results = []
        for unit in units:
            results.append(fn(unit))
            if progress is not None:
                progress()
        return results
    runner = backend if backend is not None else LocalBackend(jobs=jobs)
    shards = [Shard(str(index), unit) for index, unit in enumerate(units)]
    by_index: dict[int, R] = {}
    for event in run_shards(shards, functools.partial(_run_unit, fn), runner):
        if isinstance(event, Failed):
            raise RuntimeError(f"checker unit {event.key} failed:\n{event.error}")
        if isinstance(event, Finished):
            by_index[int(event.key)] = event.result
            if progress is not None:
                progress()
    return [by_index[i] for i in range(len(units))]


def _run_unit(fn: Callable[[Any], Any], shard: Shard, ctx: ShardContext) -> Any:
    """A campaign task: one unit of the exploration."""
    return fn(shard.work)
