"""From the runs that detected something to findings: grouping by (target, kind, hook, rule,
origin), shrinking one representative run to a minimal reproducer, writing it as a scenario
file that ``vmamodel run`` replays to the same finding, and the JSON and SARIF reports."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vmamodel.check.detectors import Detection
from vmamodel.check.explore import Hit, Inject, Outcome, execute
from vmamodel.check.rules import rule_text
from vmamodel.check.skeletons import BASE, Step
from vmamodel.check.targets import Target
from vmamodel.constants import (
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_RANDOM,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_PRIVATE,
    MAP_SHARED,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    O_RDONLY,
    O_RDWR,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
)
from vmamodel.events import Event
from vmamodel.profiles import PROFILES
from vmamodel.scenario import ModelBackend, options_for, parse
from vmamodel.scenario import execute as execute_scenario
from vmamodel.scenario.tokens import errno_name

GroupKey = tuple[str, str, str, str, str]  # target, kind, hook, rule, origin
PROFILE_ORDER = list(PROFILES)
#: Origins that are the driver's own bugs (exit status 1).
DRIVER_ORIGINS = ("driver",)


@dataclass
class Finding:
    """A group of runs with the same (target, kind, hook, rule, origin)."""

    target: str
    kind: str
    hook: str
    rule: str
    origin: str
    profiles: list[str]
    count: int
    paths: list[str]
    detail: str
    reproducer: str = ""
    trace: list[str] = field(default_factory=list)
    reproduced: bool = False
    location: tuple[str, int] | None = None

    @property
    def sentence(self) -> str:
        return rule_text(self.rule)

    @property
    def is_driver_bug(self) -> bool:
        return self.origin in DRIVER_ORIGINS

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.kind, self.hook, self.rule, self.origin

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["sentence"] = self.sentence
        out["location"] = list(self.location) if self.location else None
        return out


# ---------------------------------------------------------------------------------------------
# grouping


def group(hits: Sequence[Hit]) -> dict[GroupKey, list[tuple[Hit, Detection]]]:
    groups: dict[GroupKey, list[tuple[Hit, Detection]]] = {}
    for hit in hits:
        for detection in hit.detections:
            groups.setdefault((hit.target.spec, *detection.key), []).append((hit, detection))
    return groups


def describe_path(hit: Hit, detection: Detection) -> str:
    """``merge-prev [v4]: call 2 (mmap) with vma_alloc #1 failing``."""
    inject = f", {hit.inject[0]} #{hit.inject[1]} failing" if hit.inject else ""
    return f"{hit.skeleton.name} [{hit.profile}]{inject}"


def representative(members: list[tuple[Hit, Detection]]) -> tuple[Hit, Detection]:
    """The run to shrink: the fewest steps, no fault if possible, the first profile."""
    return min(members, key=lambda m: (len(m[0].skeleton.steps), m[0].inject is not None,
                                       PROFILE_ORDER.index(m[0].profile), m[0].inject or ("", 0)))


# ---------------------------------------------------------------------------------------------
# shrinking


def _shows(target: Target, profile: str, steps: Sequence[Step], inject: Inject,
           key: tuple[str, str, str, str]) -> bool:
    return any(d.key == key for d in execute(target, profile, steps, inject).detections)


def _valid(steps: Sequence[Step]) -> bool:
    bound = {"fd", "main"}
    for step in steps:
        if not step.uses() <= bound:
            return False
        if step.bind is not None:
            bound.add(step.bind)
    return True


def _with_fault(target: Target, profile: str, steps: Sequence[Step], point: str,
                key: tuple[str, str, str, str]) -> Inject | bool:
    """The smallest nth of ``point`` with which ``steps`` still show the finding, or False."""
    reached = execute(target, profile, steps, None).reached.get(point, 0)
    for nth in range(1, reached + 1):
        if _shows(target, profile, steps, (point, nth), key):
            return point, nth
    return False


def shrink(target: Target, profile: str, steps: Sequence[Step], inject: Inject,
           key: tuple[str, str, str, str]) -> tuple[list[Step], Inject]:
    """Fewest calls and the one fault (or none) that still show the finding."""
    current = list(steps)
    fault = inject
    if fault is not None and _shows(target, profile, current, None, key):
        fault = None
    changed = True
    while changed:
        changed = False
        for index in range(len(current)):
            candidate = current[:index] + current[index + 1:]
            if not _valid(candidate):
                continue
            found: Inject | bool
            if fault is None:
                found = None if _shows(target, profile, candidate, None, key) else False
            else:
                found = _with_fault(target, profile, candidate, fault[0], key)
            if found is not False:
                current = candidate
                fault = found if isinstance(found, tuple) else None
                changed = True
                break
    if fault is not None:
        smaller = _with_fault(target, profile, current, fault[0], key)
        if isinstance(smaller, tuple):
            fault = smaller
    return current, fault


# ---------------------------------------------------------------------------------------------
# reproducers


_PROT = ((PROT_READ, "PROT_READ"), (PROT_WRITE, "PROT_WRITE"), (PROT_EXEC, "PROT_EXEC"))
_MAP = ((MAP_SHARED, "MAP_SHARED"), (MAP_PRIVATE, "MAP_PRIVATE"), (MAP_FIXED, "MAP_FIXED"),
        (MAP_ANONYMOUS, "MAP_ANONYMOUS"))
_MREMAP = ((MREMAP_MAYMOVE, "MREMAP_MAYMOVE"), (MREMAP_FIXED, "MREMAP_FIXED"),
           (MREMAP_DONTUNMAP, "MREMAP_DONTUNMAP"))
_MADV = {MADV_DONTNEED: "MADV_DONTNEED", MADV_DONTFORK: "MADV_DONTFORK",
         MADV_RANDOM: "MADV_RANDOM"}


def _bits(value: int, names: tuple[tuple[int, str], ...], zero: str) -> str:
    parts = [name for bit, name in names if value & bit]
    rest = value & ~sum(bit for bit, _ in names)
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) or zero


def _addr(value: int) -> str:
    return "BASE" if value == BASE else f"BASE + {value - BASE:#x}"


def _arg(value: int | str) -> str:
    return value if isinstance(value, str) else str(value)


def _open_call(target: Target) -> str:
    if target.flags != O_RDWR:
        flags = "O_RDONLY" if target.flags == O_RDONLY else hex(target.flags)
        return f'open("{target.spec}", {flags})'
    return f'open("{target.spec}")'


def render_step(step: Step, target: Target) -> str:
    """One scenario line for a step."""
    a = step.args
    prefix = "" if step.space == "main" else f"{step.space}."
    bind = f"{step.bind} = " if step.bind else ""
    if step.func == "mmap":
        assert isinstance(a[0], int) and isinstance(a[1], int) and isinstance(a[2], int)
        assert isinstance(a[3], int) and isinstance(a[5], int)
        body = (f"mmap({_addr(a[0])}, {a[1]:#x}, {_bits(a[2], _PROT, 'PROT_NONE')}, "
                f"{_bits(a[3], _MAP, '0')}, {_arg(a[4])}, {a[5]:#x})")
    elif step.func in ("munmap", "mlock", "munlock"):
        assert isinstance(a[0], int) and isinstance(a[1], int)
        body = f"{step.func}({_addr(a[0])}, {a[1]:#x})"
    elif step.func == "mprotect":
        assert isinstance(a[0], int) and isinstance(a[1], int) and isinstance(a[2], int)
        body = f"mprotect({_addr(a[0])}, {a[1]:#x}, {_bits(a[2], _PROT, 'PROT_NONE')})"
    elif step.func == "madvise":
        assert isinstance(a[0], int) and isinstance(a[1], int) and isinstance(a[2], int)
        body = f"madvise({_addr(a[0])}, {a[1]:#x}, {_MADV.get(a[2], str(a[2]))})"
    elif step.func == "mremap":
        assert all(isinstance(x, int) for x in a)
        old, old_len, new_len, flags, new_addr = (int(x) for x in a)
        body = (f"mremap({_addr(old)}, {old_len:#x}, {new_len:#x}, "
                f"{_bits(flags, _MREMAP, '0')}, {_addr(new_addr) if new_addr else '0'})")
    elif step.func == "open":
        body = _open_call(target)
    elif step.func == "memfd_create":
        body = f'memfd_create("{a[0]}", {_arg(a[1])})'
    elif step.func == "stacked":
        err = a[1]
        body = f"stacked({a[0]}, {err})  # {errno_name(err)}" if isinstance(err, int) and err \
            else f"stacked({a[0]})"
    else:
        body = f"{step.func}({', '.join(_arg(x) for x in a)})"
    return f"{bind}{prefix}{body}"


def reproducer_text(target: Target, profile: str, steps: Sequence[Step], inject: Inject,
                    outcome: Outcome, finding_line: str) -> str:
    """The scenario file of a reproducer: the open, the steps that ran, the exits."""
    lines = [
        f"# vmamodel check {target.spec}: {finding_line}",
        f"#! profile: {profile}",
        "#! check: lifecycle",
    ]
    if inject is not None:
        lines.append(f"#! inject: {inject[0]} nth={inject[1]}")
    lines.append(f"fd = {_open_call(target)}")
    for step, result in zip(steps, outcome.results, strict=False):
        if result is not None:  # None: it could not run (a fork it needs failed)
            lines.append(render_step(step, target))
    for space in outcome.live:
        lines.append("exit()" if space == "main" else f"{space}.exit()")
    return "\n".join(lines) + "\n"


def replay(text: str, path: str = "<reproducer>") -> tuple[list[Detection], list[str]]:
    """Run a reproducer scenario as ``vmamodel run`` does; its detections and event trace."""
    scenario = parse(text, path)
    backend = ModelBackend(scenario.profile)
    run = execute_scenario(scenario, backend, options_for(scenario, smaps=False, trace=True))
    if run.error is not None:
        raise ValueError(str(run.error))
    trace = [format_event(event) for step in run.steps for event in step.events]
    return (backend.monitor.finish() if backend.monitor is not None else []), trace


def _show(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0x1000:
        return hex(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return str(value)


def format_event(event: Event) -> str:
    """``HookCall hook=close owner=BadVmOps vma_id=3``: an event on one line."""
    parts = [event.kind]
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if value in ("", (), None) and f.name != "vma_id":
            continue
        parts.append(f"{f.name}={_show(value)}")
    return " ".join(str(p) for p in parts)


# ---------------------------------------------------------------------------------------------
# building the findings


_ORIGIN_RANK = {"driver": 0, "model": 1, "kernel": 2, "if-hook-fails": 3}
_RULE_RANK = ("merge", "teardown", "private-lost", "legacy-fail", "compat-fail", "fail:", "")


def _order(item: tuple[GroupKey, list[tuple[Hit, Detection]]]) -> tuple[Any, ...]:
    """Per target: the driver's own first, the commonest paths (merge, teardown) first."""
    spec, kind, hook, rule, origin = item[0]
    rank = next(i for i, prefix in enumerate(_RULE_RANK) if rule.startswith(prefix))
    return spec, _ORIGIN_RANK.get(origin, 9), rank, kind, hook, rule


def build_findings(hits: Sequence[Hit]) -> list[Finding]:
    """Group, shrink each group's representative, write and replay its reproducer."""
    findings = []
    for (spec, kind, hook, rule, origin), members in sorted(group(hits).items(), key=_order):
        hit, detection = representative(members)
        profiles = sorted({m[0].profile for m in members}, key=PROFILE_ORDER.index)
        steps, inject = shrink(hit.target, hit.profile, hit.skeleton.steps, hit.inject,
                               detection.key)
        outcome = execute(hit.target, hit.profile, steps, inject)
        shown = next((d for d in outcome.detections if d.key == detection.key), detection)
        text = reproducer_text(hit.target, hit.profile, steps, inject, outcome, shown.line())
        replayed, trace = replay(text)
        paths = sorted({describe_path(h, d) for h, d in members})
        findings.append(Finding(
            spec, kind, hook, rule, origin, profiles, len(members), paths[:8], shown.detail,
            text, trace, any(d.key == detection.key for d in replayed),
            source_location(hit.target),
        ))
    return findings


def source_location(target: Target) -> tuple[str, int] | None:
    """Where the driver's file_operations are defined (for SARIF)."""
    try:
        f_op = target.open().f_op
        cls = type(f_op)
        path = inspect.getsourcefile(cls)
        line = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return None
    if path is None:
        return None
    with contextlib.suppress(ValueError):  # another drive (Windows): keep it absolute
        path = os.path.relpath(path)
    return path, line


# ---------------------------------------------------------------------------------------------
# reports


def to_json(findings: Sequence[Finding], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"findings": [f.to_json() for f in findings], **(extra or {})}


def to_sarif(findings: Sequence[Finding]) -> dict[str, Any]:
    """SARIF 2.1.0: one rule per (kind, rule), one result per finding."""
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for finding in findings:
        rule_id = f"{finding.kind}/{finding.rule}"
        rules.setdefault(rule_id, {
            "id": rule_id,
            "name": finding.kind,
            "shortDescription": {"text": f"{finding.kind}: {finding.rule}"},
            "fullDescription": {"text": finding.sentence},
        })
        result: dict[str, Any] = {
            "ruleId": rule_id,
            "level": "error" if finding.is_driver_bug else "note",
            "message": {"text": (f"[{finding.origin}] {finding.kind} in {finding.hook} "
                                 f"({finding.target}, {', '.join(finding.profiles)}): "
                                 f"{finding.sentence}. {finding.detail}")},
            "properties": {"origin": finding.origin, "hook": finding.hook,
                           "profiles": finding.profiles, "count": finding.count,
                           "reproducer": finding.reproducer},
        }
        if finding.location is not None:
            result["locations"] = [{"physicalLocation": {
                "artifactLocation": {"uri": finding.location[0]},
                "region": {"startLine": finding.location[1]},
            }}]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "vmamodel check", "rules": list(rules.values())}},
            "results": results,
        }],
    }
