"""Structured trace events: every hook call, merge decision, split, action step and warning.

Emitters guard with ``if mm.tracer.active:`` so that no event object is built when nobody
listens. Subscribe with ``mm.tracer.subscribe(callback)`` or collect with
``with mm.tracer.collect() as events: ...``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from vmamodel.constants import VM_MNEMONICS
from vmamodel.mm_types import TracerCore


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events. ``kind`` is a short stable name for filtering."""

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class Syscall(Event):
    """A model entry point began (name and arguments) ..."""

    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class SyscallReturn(Event):
    """... and returned a value or failed with an errno."""

    name: str
    result: Any = None
    errno: int = 0


@dataclass(frozen=True, slots=True)
class HookCall(Event):
    """A driver hook ran: ``hook`` is e.g. "mmap_prepare", "mapped", "close", "open"."""

    hook: str
    owner: str
    vma_id: int | None
    args: tuple[Any, ...] = ()
    errno: int = 0


@dataclass(frozen=True, slots=True)
class MergeAttempt(Event):
    """A merge was considered (vma_merge_new_range / vma_merge_existing_range)."""

    op: str
    start: int
    end: int
    merged: bool
    target_id: int | None = None
    removed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class MergeRefused(Event):
    """Two VMAs that touch did not merge, and why (the kernel predicate that said no)."""

    side: str
    neighbour_id: int
    rule: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Split(Event):
    """__split_vma: ``vma_id`` was split at ``addr``; ``new_id`` is the new piece."""

    vma_id: int
    addr: int
    new_below: bool
    new_id: int


@dataclass(frozen=True, slots=True)
class VmaCreated(Event):
    vma_id: int
    start: int
    end: int
    pgoff: int
    flags: int


@dataclass(frozen=True, slots=True)
class VmaRemoved(Event):
    vma_id: int
    start: int
    end: int
    reason: str


@dataclass(frozen=True, slots=True)
class VmaChanged(Event):
    """A VMA's range, pgoff or flags changed in place (expand, shrink, flag update)."""

    vma_id: int
    start: int
    end: int
    pgoff: int
    flags: int
    reason: str


@dataclass(frozen=True, slots=True)
class ActionStep(Event):
    """An mmap action step: "prepare" or "complete", its type and result."""

    step: str
    action: str
    errno: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AnonVmaAssigned(Event):
    vma_id: int
    anon_vma: int
    reused_from: int | None = None


@dataclass(frozen=True, slots=True)
class FaultInjected(Event):
    point: str
    hit: int
    errno: int


@dataclass(frozen=True, slots=True)
class WarnOn(Event):
    """A kernel WARN_ON/pr_warn the model reproduces."""

    message: str
    detail: str = ""


class Trace(list[Event]):
    """The events ``Tracer.collect()`` gathered: a list, with a type of its own so that a tool
    (vmamodel.show) can register how a notebook displays it."""


class Tracer(TracerCore):
    """The per-address-space event hub. ``active`` is False while nobody listens (the
    switch and ``emit`` are vmamodel.mm_types.TracerCore, native in the compiled build)."""

    __slots__ = ()

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback`` with every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        self.active = True

        def unsubscribe() -> None:
            self._subscribers.remove(callback)
            self.active = bool(self._subscribers)

        return unsubscribe

    @contextmanager
    def collect(self) -> Iterator[Trace]:
        """Collect the events emitted inside the ``with`` block into a list (a Trace)."""
        events = Trace()
        unsubscribe = self.subscribe(events.append)
        try:
            yield events
        finally:
            unsubscribe()


def format_event(event: Event) -> str:
    """``MergeAttempt op=mmap start=0x100000000000 merged=True``; vm_flags as in smaps."""
    fields = []
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if value == "":
            continue
        shown = vm_flags_text(value) if f.name == "flags" else _format_value(value)
        fields.append(f"{f.name}={shown}")
    return " ".join([event.kind, *fields])


def vm_flags_text(flags: int) -> str:
    """``[rd wr mr mw me ac]``: the VmFlags mnemonics of a vm_flags value."""
    names = [VM_MNEMONICS.get(bit) or f"bit{bit}" for bit in range(64) if flags >> bit & 1]
    return "[" + " ".join(names) + "]"


def _format_value(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0x1000:
        return hex(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_format_value(v) for v in value) + ")"
    return str(value)
