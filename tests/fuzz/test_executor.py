"""vmamodel.campaign: the generic executor, with the local backend (real worker processes)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from vmamodel.campaign import Emitted, Failed, Finished, LocalBackend, Shard, run_shards

from . import tasks


def _shards(n: int, size: int = 3) -> list[Shard]:
    return [Shard(f"s{i}", tuple(range(i * size, i * size + size))) for i in range(n)]


def test_every_shard_finishes_once_after_its_items() -> None:
    events = list(run_shards(_shards(5), tasks.squares, LocalBackend(jobs=2)))
    finished = [e for e in events if isinstance(e, Finished)]
    assert sorted(e.key for e in finished) == [f"s{i}" for i in range(5)]
    assert all(e.result == 3 for e in finished)
    items = sorted(e.item for e in events if isinstance(e, Emitted))
    assert items == [n * n for n in range(15)]
    for event in finished:  # a shard's items all come before its Finished
        position = events.index(event)
        assert not [e for e in events[position:] if isinstance(e, Emitted) and e.key == event.key]


def test_an_exception_fails_its_shard_only() -> None:
    events = list(run_shards(_shards(3), tasks.fail_on_three, LocalBackend(jobs=2)))
    failed = [e for e in events if isinstance(e, Failed)]
    assert [e.key for e in failed] == ["s1"]
    assert "ValueError: three is not allowed" in failed[0].error
    assert sorted(e.key for e in events if isinstance(e, Finished)) == ["s0", "s2"]


def test_a_dead_worker_is_replaced_and_its_shard_retried(tmp_path: Path) -> None:
    shards = [Shard(f"d{i}", (str(tmp_path),)) for i in range(2)]
    events = list(run_shards(shards, tasks.die_once, LocalBackend(jobs=1, retries=1)))
    assert sorted((e.key, e.result) for e in events if isinstance(e, Finished)) == [
        ("d0", "survived"), ("d1", "survived")]


def test_a_shard_that_always_kills_its_worker_fails_after_the_retries() -> None:
    events = list(run_shards([Shard("x", ())], tasks.die_always, LocalBackend(retries=1)))
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert "died (exit code 4) 2 times" in events[0].error


def test_a_deadline_stops_an_endless_shard_list() -> None:
    endless = (Shard(f"e{i}", ()) for i in itertools.count())
    start = time.time()
    events = list(run_shards(endless, tasks.slow, LocalBackend(jobs=2), deadline=start + 8))
    assert time.time() - start < 30
    finished = [e for e in events if isinstance(e, Finished)]
    assert len(finished) == 2  # one per worker; no shard is handed out after the deadline
    ticks = sum(1 for e in events if isinstance(e, Emitted))
    assert ticks == sum(e.result for e in finished) > 0


def test_leaving_the_loop_early_stops_the_workers() -> None:
    backend = LocalBackend(jobs=2)
    endless = (Shard(f"e{i}", ()) for i in itertools.count())
    for event in run_shards(endless, tasks.slow, backend, deadline=time.time() + 60):
        assert isinstance(event, Emitted)
        break
    assert backend._workers == []


@pytest.mark.parametrize("jobs", [1, 3])
def test_results_do_not_depend_on_the_number_of_workers(jobs: int) -> None:
    events = run_shards(_shards(4), tasks.squares, LocalBackend(jobs=jobs))
    assert sorted(e.item for e in events if isinstance(e, Emitted)) == [n * n for n in range(12)]
