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

import heapq
import itertools
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from vmamodel.constants import PAGE_SIZE
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

    @property
    def named(self) -> frozenset[int]:
        """Every VMA id the events name."""
        return frozenset(self.by_id)

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
#: calls that may change any VMA of a space (or the set of spaces): a step with one of these
#: is recorded by a pass over every VMA
WHOLE_SPACE_CALLS = frozenset({"fork", "exit", "brk", "mlockall", "munlockall"})
#: calls whose first two arguments are the (address, length) they may change, neighbours aside
RANGE_CALLS = frozenset({"munmap", "mprotect", "pkey_mprotect", "madvise", "mlock", "mlock2",
                         "munlock", "mseal", "set_vma_anon_name"})


def _signature(vma: Vma) -> _Signature:
    """Everything about a VMA the picture shows; a new version starts when it changes."""
    anon = vma.anon_vma
    return (vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags,
            None if anon is None else anon.id, vma.anon_name, id(vma.vm_file), id(vma.vm_ops))


def _window(addr: Any, length: Any) -> tuple[int, int] | None:
    if not isinstance(addr, int) or not isinstance(length, int) or length < 0:
        return None
    lo = max(0, addr - addr % PAGE_SIZE)
    return lo, addr + length + PAGE_SIZE


def call_windows(events: Sequence[Event]) -> list[tuple[int, int]] | None:
    """The address ranges a step's calls may have changed (with their touching neighbours),
    from their Syscall and SyscallReturn events and the VMA events; None when a call may
    have changed anything (fork, exit, brk, the mlockall pair, a call the model does not
    announce)."""
    windows: list[tuple[int, int]] = []
    calls = 0
    args: tuple[Any, ...] = ()
    for event in events:
        found: list[tuple[int, int] | None] = []
        if isinstance(event, Syscall):
            calls += 1
            args = event.args
            if event.name in WHOLE_SPACE_CALLS:
                return None
            if event.name in RANGE_CALLS or event.name == "mmap":
                found.append(_window(args[0], args[1]))
            elif event.name == "mremap":
                found += [_window(args[0], max(args[1], args[2])), _window(args[4], args[2])]
            elif event.name == "touch":
                found.append(_window(args[0], 1))
        elif isinstance(event, SyscallReturn) and not event.errno and event.result is not None:
            if event.name == "mmap":
                found.append(_window(event.result, args[1]))
            elif event.name == "mremap":
                found.append(_window(event.result, args[2]))
        elif isinstance(event, VmaCreated | VmaChanged | VmaRemoved | MergeAttempt):
            found.append(_window(event.start, event.end - event.start))
        windows += [w for w in found if w is not None]
    return windows if calls else None


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


class _Inconsistent(Exception):
    """A window's view disagrees with the recorded state: record the space in full instead."""


class _Space:
    """What the recorder knows of one address space: its VMAs in address order with their
    records, and the fragmentation figures kept up to date as VMAs change."""

    def __init__(self, index: int, bounds: tuple[int, int] | None) -> None:
        self.index = index
        self.bounds = bounds
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.ids: list[int] = []
        self.recs: dict[int, tuple[_Signature, int]] = {}
        self.gaps: Counter[int] = Counter()
        self.gap_heap: list[int] = []  # negated sizes; stale entries are skipped
        self.rules: Counter[str] = Counter()
        self.pair_rule: dict[int, str] = {}  # left vma id -> the rule keeping it from the next
        if bounds is not None:  # the empty space: one gap, all of it
            self._gap(bounds[1] - bounds[0], 1)

    def frag(self) -> Frag:
        heap, gaps = self.gap_heap, self.gaps
        while heap and not gaps.get(-heap[0]):
            heapq.heappop(heap)
        return Frag(len(self.ids), -heap[0] if heap else 0, dict(+self.rules))

    def _gap(self, size: int, sign: int) -> None:
        if size <= 0:
            return
        self.gaps[size] += sign
        if sign > 0 and self.gaps[size] == 1:
            heapq.heappush(self.gap_heap, -size)

    def _edges(self, lo: int, hi: int, sign: int, pairs: list[tuple[int, int]]) -> None:
        """Count (sign=1) or uncount (-1) the gaps and kept-apart pairs of ids[lo:hi] and of
        its two outer neighbours."""
        ids, starts, ends = self.ids, self.starts, self.ends
        first = max(lo - 1, 0)
        last = min(hi + 1, len(ids))
        if lo == 0 and self.bounds is not None:
            self._gap((starts[0] if ids else self.bounds[1]) - self.bounds[0], sign)
        if hi == len(ids) and self.bounds is not None and ids:
            self._gap(self.bounds[1] - ends[-1], sign)
        for i in range(first, last - 1):
            self._gap(starts[i + 1] - ends[i], sign)
            if sign < 0:
                rule = self.pair_rule.pop(ids[i], None)
                if rule is not None:
                    self.rules[rule] -= 1
            elif ends[i] == starts[i + 1]:
                pairs.append((i, i + 1))

    def replace(self, lo: int, hi: int, vmas: list[Vma]) -> list[tuple[int, int]]:
        """Put ``vmas`` in place of ids[lo:hi]; returns the touching pairs (as indices) whose
        rule is to be found."""
        pairs: list[tuple[int, int]] = []
        self._edges(lo, hi, -1, pairs)
        self.starts[lo:hi] = [v.vm_start for v in vmas]
        self.ends[lo:hi] = [v.vm_end for v in vmas]
        self.ids[lo:hi] = [v.id for v in vmas]
        self._edges(lo, lo + len(vmas), 1, pairs)
        return pairs


class Recorder:
    """Builds a :class:`Film` from live model address spaces, one step at a time.

    A step costs what it changed: the VMAs looked at are those in the ranges the step's calls
    name (and their neighbours), found from the step's events; a call that may change any VMA
    (fork, brk...), or a step without events, costs one pass over the VMAs. Fragmentation
    figures are kept up to date, and the maps line, VmFlags and merge-refusal rule are computed
    only for what changed. ``verify`` checks every step against a full pass (for tests).
    """

    def __init__(self, title: str, bounds: tuple[int, int] | None = None, *,
                 verify: bool = False) -> None:
        self.film = Film(title)
        #: the range the largest free gap is measured in (None: between VMAs only)
        self.bounds = bounds
        self.verify = verify
        self._labels: dict[str, int] = {}
        self._spaces: dict[int, _Space] = {}
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
        events: Sequence[Event] | None = None,
    ) -> StepInfo:
        """Add the step that just ran: its call and the state of ``spaces`` after it.
        ``events`` are all the step's trace events (None: unknown, look at every VMA)."""
        ev = _StepEvents.of(events or ())
        windows = None if events is None else call_windows(events)
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
            step.frag[index] = self._observe(step, self._spaces[index], space, ev, windows)
        for index in list(self._spaces):
            if index not in seen:  # the space exited
                for _sig, key in self._spaces.pop(index).recs.values():
                    self._kill(step, key, "exit")
        return step

    def _space(self, label: str) -> int:
        if label not in self._labels:
            index = self._labels[label] = len(self.film.spaces)
            self.film.spaces.append(label)
            self._spaces[index] = _Space(index, self.bounds)
            return index
        index = self._labels[label]
        if index not in self._spaces:  # a label used again after its space exited
            self._spaces[index] = _Space(index, self.bounds)
        return index

    def _observe(self, step: StepInfo, space: _Space, mm: AddressSpace, ev: _StepEvents,
                 windows: list[tuple[int, int]] | None) -> Frag:
        if windows is not None and space.ids:
            try:
                for lo, hi in self._with_named(space, windows, ev):
                    self._update(step, space, mm, ev, lo, hi)
                if len(space.ids) != mm.map_count:
                    raise _Inconsistent
            except _Inconsistent:
                windows = None
        if windows is None or not space.ids:
            self._update(step, space, mm, ev, None, None)
        frag = space.frag()
        if self.verify:
            self._check(space, mm, frag)
        return frag

    @staticmethod
    def _with_named(space: _Space, windows: list[tuple[int, int]],
                    ev: _StepEvents) -> list[tuple[int, int]]:
        """The call windows and the recorded ranges of every VMA the events name."""
        ranges = list(windows)
        for vid in ev.named:
            entry = space.recs.get(vid)
            if entry is not None:
                ranges.append((entry[0][0], entry[0][1]))
        ranges.sort()
        out: list[tuple[int, int]] = []
        for lo, hi in ranges:  # one window for ranges that overlap or touch
            if out and lo <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], hi))
            else:
                out.append((lo, hi))
        return out

    def _update(self, step: StepInfo, space: _Space, mm: AddressSpace, ev: _StepEvents,
                lo: int | None, hi: int | None) -> None:
        """Bring space's VMAs touching [lo, hi] (None: all of them) up to date with ``mm``."""
        if lo is None or hi is None:
            i0, i1, vmas = 0, len(space.ids), list(mm.tree)
        else:
            i0, i1, vmas = self._slices(space, mm, lo, hi)
        old_ids = set(space.ids[i0:i1])
        records = self.film.vmas
        for vma in vmas:
            entry = space.recs.get(vma.id)
            if entry is not None and vma.id not in old_ids:
                raise _Inconsistent  # a VMA the window did not expect
            sig = _signature(vma)
            if entry is not None and entry[0] == sig:
                continue
            key = self._new_record(step, space.index, mm, vma, ev,
                                   None if entry is None else records[entry[1]])
            space.recs[vma.id] = (sig, key)
        new_ids = {vma.id for vma in vmas}
        for vid in old_ids - new_ids:
            _sig, key = space.recs.pop(vid)
            self._kill(step, key, ev.removed.get(vid, "unmapped"))
        for i, j in space.replace(i0, i1, vmas):
            self._pair(space, mm, i, j)

    def _slices(self, space: _Space, mm: AddressSpace, lo: int,
                hi: int) -> tuple[int, int, list[Vma]]:
        """The recorded slice and the live VMAs touching [lo, hi], widened until both cover
        the same addresses."""
        for _ in range(8):
            i0 = bisect_left(space.ends, lo)
            i1 = bisect_right(space.starts, hi)
            vmas = mm.tree.range(max(0, lo - 1), hi + 1)
            new_lo = min([lo] + ([space.starts[i0]] if i0 < i1 else [])
                         + ([vmas[0].vm_start] if vmas else []))
            new_hi = max([hi] + ([space.ends[i1 - 1]] if i0 < i1 else [])
                         + ([vmas[-1].vm_end] if vmas else []))
            if (new_lo, new_hi) == (lo, hi):
                return i0, i1, vmas
            lo, hi = new_lo, new_hi
        raise _Inconsistent

    def _pair(self, space: _Space, mm: AddressSpace, i: int, j: int) -> None:
        left_id, right_id = space.ids[i], space.ids[j]
        left_key, right_key = space.recs[left_id][1], space.recs[right_id][1]
        pair = (left_key, right_key)
        if pair not in self._refusals:
            left, right = mm.tree.lookup(space.starts[i]), mm.tree.lookup(space.starts[j])
            assert left is not None and right is not None
            self._refusals[pair] = vma_pair_refusal(mm, left, right)
        rule = self._refusals[pair]
        if rule is not None:
            space.pair_rule[left_id] = rule
            space.rules[rule] += 1

    def _check(self, space: _Space, mm: AddressSpace, frag: Frag) -> None:
        """The incremental state must equal a pass over every VMA (``verify``)."""
        vmas = list(mm.tree)
        assert space.ids == [v.id for v in vmas], "VMA ids differ from a full pass"
        for vma in vmas:
            assert space.recs[vma.id][0] == _signature(vma), f"stale record of {vma!r}"
        cursor = None if self.bounds is None else self.bounds[0]
        largest = 0
        rules: Counter[str] = Counter()
        for left, right in zip([None, *vmas], vmas, strict=False):
            if left is not None:
                cursor = left.vm_end
                if left.vm_end == right.vm_start:
                    rule = vma_pair_refusal(mm, left, right)
                    if rule is not None:
                        rules[rule] += 1
            if cursor is not None:
                largest = max(largest, right.vm_start - cursor)
        if self.bounds is not None:
            largest = max(largest, self.bounds[1] - (vmas[-1].vm_end if vmas else
                                                     self.bounds[0]))
        assert frag == Frag(len(vmas), largest, dict(rules)), (frag, largest, rules)

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
