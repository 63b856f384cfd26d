"""The neutral picture of an address-space history that the terminal and HTML views draw.

A :class:`Film` is a list of steps (one a call) and a list of VMA *versions*
(:class:`VmaRecord`): one record per VMA per stretch of steps during which none of its
attributes changed, with the step it appeared at (``born``) and the step it stopped being true
at (``died``). A step therefore stores only what it changed, never a whole snapshot, and the
state at any step is the records alive there.

A :class:`Recorder` builds a film from live model address spaces, one step at a time (an
observer of the scenario executor, or a notebook's ``AddressSpace``); :func:`film_from_events`
builds one from a collected trace alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from vmamodel.events import (
    AnonVmaAssigned,
    Event,
    HookCall,
    MergeAttempt,
    MergeRefused,
    Split,
    Syscall,
    SyscallReturn,
    VmaChanged,
    VmaCreated,
    VmaRemoved,
    format_event,
)
from vmamodel.merge import vma_pair_refusal
from vmamodel.mm import AddressSpace
from vmamodel.procfs import maps_line, vm_flags_line
from vmamodel.vma import Vma

#: How a VMA version came to be, in the order the legend lists them.
CHANGES = ("created", "split", "merged", "flags", "resized", "anon_vma", "changed")


@dataclass(slots=True)
class VmaRecord:
    """One version of one VMA: its attributes from step ``born`` until step ``died``."""

    key: int
    space: int
    vma_id: int
    start: int
    end: int
    #: the /proc/PID/maps line, without its newline
    maps: str
    #: the VmFlags mnemonics, as smaps prints them
    flags: str
    anon_vma: int | None
    vm_ops: str | None
    born: int
    #: one of CHANGES: how this version came to be at step ``born``
    change: str
    #: the events of step ``born`` that name this VMA
    events: tuple[str, ...] = ()
    #: the record of the same VMA before step ``born`` (None: the VMA is new)
    prev: int | None = None
    #: the first step at which this version no longer holds (None: it holds at the end)
    died: int | None = None
    #: why the VMA itself went away at ``died`` ("munmap", "merged", "exit"...); "" when only
    #: its attributes changed
    end_reason: str = ""

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def perms(self) -> str:
        return self.maps.split(maxsplit=2)[1]

    @property
    def name(self) -> str:
        parts = self.maps.split(maxsplit=5)
        return parts[5] if len(parts) > 5 else ""

    def alive_at(self, step: int) -> bool:
        return self.born <= step and (self.died is None or step < self.died)


@dataclass(frozen=True, slots=True)
class Frag:
    """Fragmentation of one address space after a step."""

    count: int
    largest_gap: int
    #: rule -> number of touching pairs that this rule keeps from merging
    refusals: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class StepInfo:
    """One call and what it did."""

    index: int
    line: int | None
    text: str
    result: str
    ok: bool
    errno: int = 0
    expectation: str | None = None
    events: tuple[str, ...] = ()
    #: merge decisions, each with its rule when refused
    merges: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()
    #: records born and records that died at this step (the diff against the previous step)
    born: list[int] = field(default_factory=list)
    died: list[int] = field(default_factory=list)
    #: space index -> its fragmentation after the step
    frag: dict[int, Frag] = field(default_factory=dict)


@dataclass
class Film:
    """Steps and VMA versions: everything a view of the history needs."""

    title: str
    spaces: list[str] = field(default_factory=list)
    steps: list[StepInfo] = field(default_factory=list)
    vmas: list[VmaRecord] = field(default_factory=list)

    def alive_at(self, step: int) -> list[VmaRecord]:
        """The VMAs after ``step``, by space then address."""
        return sorted((r for r in self.vmas if r.alive_at(step)),
                      key=lambda r: (r.space, r.start))

    def states(self) -> Iterator[tuple[StepInfo, list[VmaRecord]]]:
        """Each step with the VMAs after it, in one pass over the deltas."""
        alive: dict[int, VmaRecord] = {}
        for step in self.steps:
            for key in step.died:
                alive.pop(key, None)
            for key in step.born:
                alive[key] = self.vmas[key]
            yield step, sorted(alive.values(), key=lambda r: (r.space, r.start))

    def replaced(self, record: VmaRecord) -> VmaRecord | None:
        """The version that replaced ``record`` at the step it died (same VMA), if any."""
        if record.died is None or record.end_reason:
            return None
        for key in self.steps[record.died].born:
            if self.vmas[key].prev == record.key:
                return self.vmas[key]
        return None


# ---------------------------------------------------------------------------------------------
# Describing events


def describe_merge(event: MergeAttempt | MergeRefused) -> str:
    """One line for a merge decision: what merged into what, or which rule refused."""
    if isinstance(event, MergeRefused):
        detail = f" ({event.detail})" if event.detail else ""
        return f"refused with {event.side} #{event.neighbour_id}: {event.rule}{detail}"
    what = f"{event.op} [{event.start:#x}, {event.end:#x})"
    if not event.merged:
        return f"{what}: no merge"
    removed = "".join(f", removed #{vid}" for vid in event.removed)
    return f"{what}: merged into #{event.target_id}{removed}"


def describe_hook(event: HookCall) -> str:
    on = "" if event.vma_id is None else f" on #{event.vma_id}"
    result = f" = -{event.errno}" if event.errno else ""
    return f"{event.owner}.{event.hook}{on}{result}"


def _named_ids(event: Event) -> Iterator[int]:
    """The VMA ids an event names."""
    for name in ("vma_id", "new_id", "target_id", "neighbour_id"):
        value = getattr(event, name, None)
        if isinstance(value, int):
            yield value
    yield from getattr(event, "removed", ())


@dataclass(frozen=True, slots=True)
class _StepEvents:
    """A step's events, formatted once and indexed by the VMA ids they name."""

    lines: tuple[str, ...]
    merges: tuple[str, ...]
    hooks: tuple[str, ...]
    by_id: dict[int, list[str]]
    split_new: frozenset[int]
    split_old: frozenset[int]
    merge_targets: frozenset[int]
    removed: dict[int, str]

    @classmethod
    def of(cls, events: Iterable[Event]) -> _StepEvents:
        lines: list[str] = []
        merges: list[str] = []
        hooks: list[str] = []
        by_id: dict[int, list[str]] = {}
        split_new, split_old, targets = set(), set(), set()
        removed: dict[int, str] = {}
        for event in events:
            text = format_event(event)
            lines.append(text)
            for vid in _named_ids(event):
                by_id.setdefault(vid, []).append(text)
            if isinstance(event, MergeAttempt | MergeRefused):
                merges.append(describe_merge(event))
                if isinstance(event, MergeAttempt) and event.merged \
                        and event.target_id is not None:
                    targets.add(event.target_id)
            elif isinstance(event, HookCall):
                hooks.append(describe_hook(event))
            elif isinstance(event, Split):
                split_new.add(event.new_id)
                split_old.add(event.vma_id)
            elif isinstance(event, VmaRemoved):
                removed[event.vma_id] = event.reason
        return cls(tuple(lines), tuple(merges), tuple(hooks), by_id, frozenset(split_new),
                   frozenset(split_old), frozenset(targets), removed)


# ---------------------------------------------------------------------------------------------
# Recording live address spaces

_Signature = tuple[Any, ...]


def _signature(vma: Vma) -> _Signature:
    """Everything about a VMA the picture shows; a new version starts when it changes."""
    anon = vma.anon_vma
    return (vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags,
            None if anon is None else anon.id, vma.anon_name, id(vma.vm_file), id(vma.vm_ops))


def _change(old: VmaRecord | None, vma: Vma, ev: _StepEvents) -> str:
    """How the version of ``vma`` after this step differs from ``old`` (None: a new VMA)."""
    if old is None:
        return "split" if vma.id in ev.split_new else "created"
    if (old.start, old.end) != (vma.vm_start, vma.vm_end):
        if vma.id in ev.merge_targets or (
                vma.vm_end - vma.vm_start > old.size and ev.removed):
            return "merged"
        if vma.id in ev.split_old:
            return "split"
        return "resized"
    if vm_flags_line(vma.vm_flags)[9:].strip() != old.flags:
        return "flags"
    anon = vma.anon_vma
    if (None if anon is None else anon.id) != old.anon_vma:
        return "anon_vma"
    return "changed"


class Recorder:
    """Builds a :class:`Film` from live model address spaces, one step at a time.

    Each step costs one pass over the VMAs of the live spaces (a tuple compare per VMA); the
    maps line, VmFlags and merge-refusal rule are computed only for what changed.
    """

    def __init__(self, title: str, bounds: tuple[int, int] | None = None) -> None:
        self.film = Film(title)
        #: the range the largest free gap is measured in (None: between VMAs only)
        self.bounds = bounds
        self._labels: dict[str, int] = {}
        # space index -> vma id -> (signature, record key)
        self._live: dict[int, dict[int, tuple[_Signature, int]]] = {}
        # (left record, right record) -> the rule keeping them apart
        self._refusals: dict[tuple[int, int], str | None] = {}

    def record(
        self,
        spaces: Sequence[tuple[str, Any]],
        *,
        text: str,
        result: str = "",
        ok: bool = True,
        errno: int = 0,
        line: int | None = None,
        expectation: str | None = None,
        events: Iterable[Event] = (),
    ) -> StepInfo:
        """Add the step that just ran: its call and the state of ``spaces`` after it."""
        ev = _StepEvents.of(events)
        step = StepInfo(len(self.film.steps), line, text, result, ok, errno, expectation,
                        ev.lines, ev.merges, ev.hooks)
        self.film.steps.append(step)
        seen: set[int] = set()
        for label, space in spaces:
            if not isinstance(space, AddressSpace):
                raise TypeError(f"vmamodel show draws model address spaces, not "
                                f"{type(space).__name__}")
            index = self._space(label)
            seen.add(index)
            step.frag[index] = self._observe(step, index, space, ev)
        for index in list(self._live):
            if index not in seen:  # the space exited
                for _sig, key in self._live.pop(index).values():
                    self._kill(step, key, "exit")
        return step

    def _space(self, label: str) -> int:
        if label not in self._labels:
            self._labels[label] = len(self.film.spaces)
            self.film.spaces.append(label)
            self._live[self._labels[label]] = {}
        return self._labels[label]

    def _observe(self, step: StepInfo, index: int, mm: AddressSpace, ev: _StepEvents) -> Frag:
        before = self._live[index]
        after: dict[int, tuple[_Signature, int]] = {}
        records = self.film.vmas
        refusals: dict[str, int] = {}
        largest = 0
        prev_vma: Vma | None = None
        prev_key = -1
        cursor = None if self.bounds is None else self.bounds[0]
        for vma in mm.tree:
            sig = _signature(vma)
            old = before.pop(vma.id, None)
            if old is not None and old[0] == sig:
                key = old[1]
            else:
                key = self._new_record(step, index, mm, vma, ev,
                                       None if old is None else records[old[1]])
            after[vma.id] = (sig, key)
            if cursor is not None:
                largest = max(largest, vma.vm_start - cursor)
            cursor = vma.vm_end
            if prev_vma is not None and prev_vma.vm_end == vma.vm_start:
                rule = self._refusal(mm, prev_vma, prev_key, vma, key)
                if rule is not None:
                    refusals[rule] = refusals.get(rule, 0) + 1
            prev_vma, prev_key = vma, key
        if self.bounds is not None and cursor is not None:
            largest = max(largest, self.bounds[1] - cursor)
        for vid, (_sig, key) in before.items():
            self._kill(step, key, ev.removed.get(vid, "unmapped"))
        self._live[index] = after
        return Frag(len(after), largest, refusals)

    def _new_record(self, step: StepInfo, index: int, mm: AddressSpace, vma: Vma,
                    ev: _StepEvents, old: VmaRecord | None) -> int:
        if old is not None:
            self._kill(step, old.key, "")
        anon = vma.anon_vma
        record = VmaRecord(
            key=len(self.film.vmas), space=index, vma_id=vma.id, start=vma.vm_start,
            end=vma.vm_end, maps=maps_line(mm, vma).rstrip("\n"),
            flags=vm_flags_line(vma.vm_flags)[9:].strip(),
            anon_vma=None if anon is None else anon.id,
            vm_ops=None if vma.vm_ops is None else repr(vma.vm_ops),
            born=step.index, change=_change(old, vma, ev),
            events=tuple(ev.by_id.get(vma.id, ())), prev=None if old is None else old.key)
        self.film.vmas.append(record)
        step.born.append(record.key)
        return record.key

    def _kill(self, step: StepInfo, key: int, reason: str) -> None:
        record = self.film.vmas[key]
        record.died = step.index
        record.end_reason = reason
        step.died.append(key)

    def _refusal(self, mm: AddressSpace, left: Vma, left_key: int, right: Vma,
                 right_key: int) -> str | None:
        pair = (left_key, right_key)
        if pair not in self._refusals:
            self._refusals[pair] = vma_pair_refusal(mm, left, right)
        return self._refusals[pair]


def film_of(mm: AddressSpace, title: str = "address space") -> Film:
    """A one-step film: the address space as it is now."""
    recorder = Recorder(title, (mm.mmap_min_addr, mm.task_size))
    recorder.record([("mm", mm)], text="now", result=f"{mm.map_count} VMAs")
    return recorder.film


# ---------------------------------------------------------------------------------------------
# A film from a trace alone


def film_from_events(events: Iterable[Event], title: str = "trace") -> Film:
    """A film of a collected trace: one step per system call, VMAs from the VMA events.

    A trace holds no snapshot, so only the VMAs its events create, change or split are drawn,
    and a range that a merge grew without a VmaChanged event shows its size before the merge.
    """
    film = Film(title, ["mm"])
    builder = _TraceBuilder(film)
    for event in events:
        builder.feed(event)
    builder.flush()
    return film


@dataclass
class _TraceBuilder:
    film: Film
    pending: list[Event] = field(default_factory=list)
    call: Syscall | None = None
    live: dict[int, int] = field(default_factory=dict)  # vma id -> record key

    def feed(self, event: Event) -> None:
        if isinstance(event, Syscall) and self.call is None and self.pending:
            self.flush()
        if isinstance(event, Syscall) and self.call is None:
            self.call = event
        self.pending.append(event)
        if isinstance(event, SyscallReturn) and self.call is not None \
                and event.name == self.call.name:
            self.flush(event)

    def flush(self, ret: SyscallReturn | None = None) -> None:
        if not self.pending:
            return
        ev = _StepEvents.of(self.pending)
        call = self.call
        text = "(events)" if call is None else \
            f"{call.name}({', '.join(_arg(a) for a in call.args)})"
        result = "" if ret is None else (f"-1 errno {ret.errno}" if ret.errno
                                         else _arg(ret.result))
        step = StepInfo(len(self.film.steps), None, text, result,
                        ret is None or not ret.errno, 0 if ret is None else ret.errno,
                        None, ev.lines, ev.merges, ev.hooks)
        self.film.steps.append(step)
        for event in self.pending:
            self._apply(step, event, ev)
        step.frag[0] = self._frag()
        self.pending, self.call = [], None

    def _apply(self, step: StepInfo, event: Event, ev: _StepEvents) -> None:
        if isinstance(event, VmaCreated):
            self._put(step, event.vma_id, event.start, event.end, event.pgoff, event.flags,
                      None, "created", ev)
        elif isinstance(event, VmaChanged):
            old = self._get(event.vma_id)
            change = "flags" if old and (old.start, old.end) == (event.start, event.end) \
                else "resized"
            self._put(step, event.vma_id, event.start, event.end, event.pgoff, event.flags,
                      old.anon_vma if old else None, change, ev)
        elif isinstance(event, VmaRemoved):
            key = self.live.pop(event.vma_id, None)
            if key is not None:
                self._kill(step, key, event.reason)
        elif isinstance(event, Split):
            self._split(step, event, ev)
        elif isinstance(event, AnonVmaAssigned):
            old = self._get(event.vma_id)
            if old is not None:
                self._put(step, old.vma_id, old.start, old.end, None, None, event.anon_vma,
                          "anon_vma", ev)

    def _split(self, step: StepInfo, event: Split, ev: _StepEvents) -> None:
        old = self._get(event.vma_id)
        if old is None:
            return
        low, high = (old.start, event.addr), (event.addr, old.end)
        new_range, old_range = (low, high) if event.new_below else (high, low)
        self._put(step, event.new_id, *new_range, None, None, old.anon_vma, "split", ev,
                  like=old)
        self._put(step, old.vma_id, *old_range, None, None, old.anon_vma, "split", ev,
                  like=old)

    def _get(self, vma_id: int) -> VmaRecord | None:
        key = self.live.get(vma_id)
        return None if key is None else self.film.vmas[key]

    def _put(self, step: StepInfo, vma_id: int, start: int, end: int, pgoff: int | None,
             flags: int | None, anon: int | None, change: str, ev: _StepEvents,
             like: VmaRecord | None = None) -> None:
        old = self._get(vma_id)
        base = like or old
        if old is not None:
            self._kill(step, old.key, "")
        if flags is None:
            flags_text = base.flags if base else ""
            perms = base.perms if base else "----"
        else:
            flags_text = vm_flags_line(flags)[9:].strip()
            perms = _perms(flags_text)
        offset = pgoff << 12 if pgoff is not None else 0
        maps = f"{start:08x}-{end:08x} {perms} {offset:08x} 00:00 0"
        record = VmaRecord(len(self.film.vmas), 0, vma_id, start, end, maps, flags_text, anon,
                           None, step.index, change if old or change != "split" else "split",
                           tuple(ev.by_id.get(vma_id, ())),
                           None if old is None else old.key)
        self.film.vmas.append(record)
        step.born.append(record.key)
        self.live[vma_id] = record.key

    def _kill(self, step: StepInfo, key: int, reason: str) -> None:
        record = self.film.vmas[key]
        record.died, record.end_reason = step.index, reason
        if key in step.born:  # born and replaced within one step: never shown
            step.born.remove(key)
        else:
            step.died.append(key)

    def _frag(self) -> Frag:
        vmas = sorted((self.film.vmas[k] for k in self.live.values()), key=lambda r: r.start)
        gaps = [b.start - a.end for a, b in itertools.pairwise(vmas)]
        return Frag(len(vmas), max(gaps, default=0))


def _perms(flags: str) -> str:
    names = flags.split()
    return "".join(c if name in names else "-"
                   for c, name in (("r", "rd"), ("w", "wr"), ("x", "ex"))) \
        + ("s" if "ms" in names else "p")


def _arg(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0x1000:
        return hex(value)
    return repr(value) if isinstance(value, str) else str(value)


# ---------------------------------------------------------------------------------------------
# Sizes


def human_size(n: int) -> str:
    """``4K``, ``12K``, ``1.5M``, ``1023.9G``, ``128T``: a byte count in binary units."""
    for unit, shift in (("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text}{unit}"
    return f"{n}B"
