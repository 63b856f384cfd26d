"""The executor's vocabulary: shards, the context a task runs in, and the events of a run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Shard:
    """One independent piece of a job: ``key`` names it (unique in the job), ``work`` is the
    picklable description the task needs (never a live object)."""

    key: str
    work: Any


@dataclass(slots=True)
class ShardContext:
    """What a task sees of the run: a deadline and a way to stream items back."""

    deadline: float | None = None
    sink: Callable[[Any], None] | None = None
    emitted: list[Any] = field(default_factory=list)

    @property
    def expired(self) -> bool:
        """The run's deadline has passed: return early with what is done."""
        return self.deadline is not None and time.time() >= self.deadline

    def emit(self, item: Any) -> None:
        """Send a picklable item to the coordinator (at once where the backend can)."""
        if self.sink is not None:
            self.sink(item)
        else:
            self.emitted.append(item)


#: A module-level function run once per shard.
Task = Callable[[Shard, ShardContext], Any]


@dataclass(frozen=True, slots=True)
class Emitted:
    key: str
    item: Any


@dataclass(frozen=True, slots=True)
class Finished:
    key: str
    result: Any


@dataclass(frozen=True, slots=True)
class Failed:
    key: str
    error: str


Event = Emitted | Finished | Failed


class Backend(Protocol):
    """Runs a task over shards; see the package docstring for the contract."""

    def run(self, shards: Iterator[Shard], task: Task, deadline: float | None) -> Iterator[Event]:
        ...


def run_shards(
    shards: Iterable[Shard], task: Task, backend: Backend, *, deadline: float | None = None
) -> Iterator[Event]:
    """Run ``task`` on every shard (until ``deadline``) and yield the events as they come."""
    return backend.run(_until(iter(shards), deadline), task, deadline)


def _until(shards: Iterator[Shard], deadline: float | None) -> Iterator[Shard]:
    """The shards, but none once the deadline has passed."""
    for shard in shards:
        if deadline is not None and time.time() >= deadline:
            return
        yield shard
