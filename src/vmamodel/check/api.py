"""``vmamodel.check.check(...)``: the checker as a Python API."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from vmamodel.campaign import Backend as CampaignBackend
from vmamodel.check.explore import Unit, UnitResult, explore_unit, run_units
from vmamodel.check.findings import Finding, build_findings
from vmamodel.check.targets import Target, TargetError, resolve
from vmamodel.file import File
from vmamodel.profiles import PROFILES


@dataclass
class Report:
    """Everything one check found, and what it did to find it."""

    findings: list[Finding]
    runs: int
    units: list[UnitResult] = field(default_factory=list)

    @property
    def driver_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.is_driver_bug]

    def skipped(self) -> list[tuple[str, str, str]]:
        """(target, profile, why) of the combinations the driver does not build for."""
        return [(u.unit.target.spec, u.unit.profile, u.skipped) for u in self.units
                if u.skipped is not None]


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def _targets(target: str | Callable[[], File]) -> list[Target]:
    if isinstance(target, str):
        return resolve(target)
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None)
    if module is None or name is None or "<" in name:
        raise TargetError(f"{target!r}: pass a module-level factory function, or its "
                          "'package.module:factory' name")
    return resolve(f"{module}:{name}")


def run_check(target: str | Callable[[], File], profiles: Iterable[str] | None = None,
              budget: int = 0, seed: int = 0, jobs: int | None = None,
              progress: Callable[[int, int], None] | None = None,
              backend: CampaignBackend | None = None) -> Report:
    """Explore every target under every profile; see :func:`check`."""
    chosen = list(profiles) if profiles else list(PROFILES)
    for name in chosen:
        if name not in PROFILES:
            raise TargetError(f"unknown profile {name!r}; choose from {sorted(PROFILES)}")
    units = [Unit(t, p, budget, seed) for t in _targets(target) for p in chosen]
    done = 0
    if progress is not None:
        progress(0, len(units))

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(units))

    results: Sequence[UnitResult] = run_units(
        explore_unit, units, default_jobs() if jobs is None else jobs, tick, backend)
    hits = [hit for result in results for hit in result.hits]
    return Report(build_findings(hits), sum(r.runs for r in results), list(results))


def check(target: str | Callable[[], File], profiles: Iterable[str] | None = None,
          budget: int = 0, seed: int = 0, jobs: int | None = None,
          backend: CampaignBackend | None = None) -> list[Finding]:
    """Find lifecycle bugs in a driver's mmap hooks.

    ``target``: a built-in device path ("/dev/bad0"), "all", "package.module:factory", or a
    module-level factory function returning a fresh :class:`~vmamodel.file.File` with fresh
    device state on every call. ``profiles``: kernel profiles (default: all three).
    ``budget``: random call sequences per target and profile beyond the skeletons, drawn
    from ``seed``. ``jobs``: processes (default: the cores); ``backend``: a
    ``vmamodel.campaign`` backend instead (e.g. ``RayBackend``). Returns every finding, the
    driver's own (``finding.is_driver_bug``) and the kernel's.
    """
    return run_check(target, profiles, budget, seed, jobs, backend=backend).findings
