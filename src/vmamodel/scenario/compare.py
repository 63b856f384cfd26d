"""Comparison of two runs of one scenario: the model's and the host kernel's.

What is compared, step by step (a step is one line of the scenario):

- the result of the call: the returned value, or the errno (a crash of a backend always differs);
- the ``/proc/PID/maps`` text of every live address space, byte for byte, after one
  normalisation (below);
- the ``VmFlags:`` line of every VMA that both sides have at the same range (from smaps). The
  other smaps fields (Rss, THPeligible...) are not compared.

Inode normalisation. The inode numbers of shmem files (memfd, shared anonymous ``/dev/zero``)
and of regular files are chosen by the kernel and differ between the model and the host by
nature. Each run therefore renumbers them on its own: walking the steps in order, the address
spaces of a step in order and the lines of each maps text top to bottom, the first
(device, inode) pair met becomes inode 1, the next different pair 2, and so on; inode 0 (no
file) stays 0. The same file keeps the same number across steps and address spaces, so the
identity structure is still checked: two mappings of one memfd must carry one number on both
sides, and two different memfds must carry two. The name column's padding is recomputed for the
new number with the kernel's rule (the name starts at column 73, or one space after a longer
prefix), but only for lines whose padding already followed that rule; a line that did not is
left untouched so that it still differs. Devices are compared as printed (shmem is ``00:01`` on
both sides). Everything else is byte-exact.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass

from vmamodel.scenario.executor import Outcome, Run, Snapshot, StepRecord

#: seq_setwidth(m, 25 + 6 * sizeof(void *) - 1) in show_map_vma
NAME_COLUMN_WIDTH = 72

_MAPS_LINE_RE = re.compile(
    r"(?P<head>[0-9a-f]+-[0-9a-f]+ [-r][-w][-x][-sp] [0-9a-f]+ (?P<dev>[0-9a-f]+:[0-9a-f]+) )"
    r"(?P<ino>[0-9]+) (?P<rest>.*)"
)
_RANGE_RE = re.compile(r"([0-9a-f]+-[0-9a-f]+) ")


@dataclass(frozen=True, slots=True)
class Difference:
    """One way in which the host's run differs from the model's."""

    index: int  # position of the step in the run
    line: int  # scenario line of the step
    kind: str  # "result", "maps", "vmflags", "missing" or "error"
    space: str = ""  # the address space, for "maps" and "vmflags"
    model: str = ""
    host: str = ""
    detail: str = ""

    def describe(self) -> str:
        where = f"line {self.line}" + (f" [{self.space}]" if self.space else "")
        if self.kind == "maps":
            return f"{where}: maps differ"
        extra = f" {self.detail}" if self.detail else ""
        return f"{where}: {self.kind}{extra}: model {self.model!r}, host {self.host!r}"


# ---------------------------------------------------------------------------------------------
# Normalisation


def render_maps_line(head: str, inode: int, name: str) -> str:
    """show_map_vma(): the prefix, the inode and a space, then the name padded to column 73."""
    prefix = f"{head}{inode} "
    if not name:
        return prefix
    return prefix + " " * max(0, NAME_COLUMN_WIDTH - len(prefix)) + " " + name


class InodeNumbering:
    """Renumbers (device, inode) pairs of one run by order of first appearance."""

    def __init__(self) -> None:
        self._numbers: dict[tuple[str, int], int] = {}

    def number(self, dev: str, inode: int) -> int:
        if inode == 0:
            return 0
        return self._numbers.setdefault((dev, inode), len(self._numbers) + 1)

    def line(self, line: str) -> str:
        """One maps line (without its newline) with the inode renumbered."""
        match = _MAPS_LINE_RE.fullmatch(line)
        if match is None:
            return line
        head, inode = match.group("head"), int(match.group("ino"))
        name = match.group("rest").lstrip(" ")
        if render_maps_line(head, inode, name) != line:
            return line  # malformed padding: keep it visible
        return render_maps_line(head, self.number(match.group("dev"), inode), name)

    def text(self, text: str) -> str:
        """Every maps line of a maps or smaps text; smaps' other lines pass unchanged."""
        out = []
        for raw in text.splitlines(keepends=True):
            body = raw.rstrip("\n")
            out.append(self.line(body) + raw[len(body):])
        return "".join(out)


def normalise(run: Run) -> Run:
    """A copy of ``run`` whose maps and smaps texts carry renumbered inodes."""
    numbering = InodeNumbering()
    steps = [_normalise_step(step, numbering) for step in run.steps]
    return dataclasses.replace(run, steps=steps)


def _normalise_step(step: StepRecord, numbering: InodeNumbering) -> StepRecord:
    snapshots = []
    for snap in step.snapshots:
        maps = numbering.text(snap.maps)
        smaps = None if snap.smaps is None else numbering.text(snap.smaps)
        snapshots.append(Snapshot(snap.space, maps, smaps))
    return dataclasses.replace(step, snapshots=tuple(snapshots))


def vmflags(smaps: str) -> dict[str, str]:
    """VMA range ("start-end") → its ``VmFlags:`` line, from an smaps text."""
    flags: dict[str, str] = {}
    current: str | None = None
    for line in smaps.splitlines():
        match = _RANGE_RE.match(line)
        if match is not None:
            current = match.group(1)
        elif line.startswith("VmFlags:") and current is not None:
            flags[current] = line
    return flags


# ---------------------------------------------------------------------------------------------
# Comparison


def compare(model: Run, host: Run) -> list[Difference]:
    """Every difference between two runs of the same scenario, in step order."""
    model, host = normalise(model), normalise(host)
    differences: list[Difference] = []
    for index, (mine, theirs) in enumerate(zip(model.steps, host.steps, strict=False)):
        differences += compare_step(index, mine, theirs)
    differences += _missing_steps(model, host)
    differences += _errors(model, host)
    return differences


def compare_step(index: int, model: StepRecord, host: StepRecord) -> list[Difference]:
    out = []
    result = _compare_outcomes(model.outcome, host.outcome)
    if result is not None:
        out.append(Difference(index, model.line, "result", "", *result))
    host_snaps = {snap.space: snap for snap in host.snapshots}
    model_snaps = {snap.space: snap for snap in model.snapshots}
    for space in _union(list(model_snaps), list(host_snaps)):
        out += _compare_snapshots(index, model.line, space, model_snaps.get(space),
                                  host_snaps.get(space))
    return out


def _compare_outcomes(model: Outcome | None, host: Outcome | None) -> tuple[str, str] | None:
    if model is None or host is None:
        return None
    if model.crash is None and host.crash is None \
            and (model.value, model.errno) == (host.value, host.errno):
        return None
    return model.describe(), host.describe()


def _compare_snapshots(
    index: int, line: int, space: str, model: Snapshot | None, host: Snapshot | None
) -> list[Difference]:
    if model is None or host is None:
        shown_model = "(no such address space)" if model is None else model.maps
        shown_host = "(no such address space)" if host is None else host.maps
        return [Difference(index, line, "maps", space, shown_model, shown_host)]
    out = []
    if model.maps != host.maps:
        out.append(Difference(index, line, "maps", space, model.maps, host.maps,
                              maps_diff(model.maps, host.maps)))
    if model.smaps is not None and host.smaps is not None:
        out += _compare_vmflags(index, line, space, vmflags(model.smaps), vmflags(host.smaps))
    return out


def _compare_vmflags(
    index: int, line: int, space: str, model: dict[str, str], host: dict[str, str]
) -> list[Difference]:
    return [
        Difference(index, line, "vmflags", space, model[vma], host[vma], vma)
        for vma in model
        if vma in host and model[vma] != host[vma]
    ]


def maps_diff(model: str, host: str) -> str:
    """A unified diff of two maps texts ("-" model, "+" host)."""
    lines = difflib.unified_diff(model.splitlines(), host.splitlines(), "model", "host",
                                 lineterm="", n=0)
    return "\n".join(lines)


def _missing_steps(model: Run, host: Run) -> list[Difference]:
    """One run stopped early (a crash or a scenario error): the first step it lacks."""
    done = min(len(model.steps), len(host.steps))
    if len(model.steps) == len(host.steps):
        return []
    host_stopped = len(model.steps) > len(host.steps)
    step = (model if host_stopped else host).steps[done]
    stopped = "host" if host_stopped else "model"
    shown = ("ran", "(stopped)") if host_stopped else ("(stopped)", "ran")
    return [Difference(done, step.line, "missing", "", *shown,
                       f"the {stopped} stopped before this line")]


def _errors(model: Run, host: Run) -> list[Difference]:
    mine = None if model.error is None else str(model.error)
    theirs = None if host.error is None else str(host.error)
    if mine == theirs:
        return []
    failed = model.error or host.error
    line = failed.line if failed is not None else 0
    return [Difference(min(len(model.steps), len(host.steps)), line, "error", "",
                       mine or "(none)", theirs or "(none)")]


def _union(first: list[str], second: list[str]) -> list[str]:
    return first + [item for item in second if item not in first]
