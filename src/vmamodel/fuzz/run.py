"""Driving a campaign: which shards to run, running them on a backend, recording results."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmamodel.campaign import Backend, Emitted, Failed, Finished, Shard, run_shards
from vmamodel.fuzz.shard import FuzzWork, run_fuzz_shard
from vmamodel.fuzz.store import Campaign, CampaignError


@dataclass(frozen=True, slots=True)
class Budget:
    """What a run may spend: a number of calls (whole sequences: ceil(calls / length) seeds
    from ``first_seed``), an explicit seed range ``seeds = (first, stop)``, and/or a time.
    With only a time, seeds run from ``first_seed`` on until it is spent."""

    calls: int | None = None
    seconds: float | None = None
    seeds: tuple[int, int] | None = None
    first_seed: int = 0

    def seed_range(self, length: int) -> tuple[int, int | None]:
        if self.seeds is not None:
            return self.seeds
        if self.calls is not None:
            return self.first_seed, self.first_seed + math.ceil(self.calls / length)
        return self.first_seed, None


def plan(campaign: Campaign, budget: Budget, template: FuzzWork) -> Iterator[Shard]:
    """The shards of the budget's seed range that still have seeds to run (lazily: an
    endless range is fine)."""
    first, stop = budget.seed_range(campaign.length)
    size = campaign.shard_size
    index = first // size
    while stop is None or index * size < stop:
        key = campaign.shard_key(index)
        lo, hi = max(first, index * size), (index + 1) * size
        if stop is not None:
            hi = min(hi, stop)
        done = campaign.done_seeds(key)
        pending = tuple(seed for seed in range(lo, hi) if seed not in done)
        if pending:
            yield Shard(key, dataclasses.replace(template, seeds=pending))
        index += 1


def planned_calls(campaign: Campaign, budget: Budget) -> int | None:
    """Calls the run has left to do, when its seed range is bounded."""
    first, stop = budget.seed_range(campaign.length)
    if stop is None:
        return None
    done = {int(r["seed"]) for r in campaign.records()}
    return sum(campaign.length for seed in range(first, stop) if seed not in done)


@dataclass
class RunStats:
    """What this run did (the campaign's totals include earlier runs)."""

    seeds: int = 0
    calls: int = 0
    diffs: list[tuple[dict[str, Any], Path | None]] = field(default_factory=list)
    invalid: int = 0
    failed_shards: list[tuple[str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ended: float = 0.0

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.started

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0


def run_campaign(
    campaign: Campaign, budget: Budget, template: FuzzWork, backend: Backend,
    on_record: Callable[[RunStats, dict[str, Any]], None] | None = None,
) -> RunStats:
    """Run the budget's pending shards and record every seed as it comes back."""
    stats = RunStats()
    deadline = None if budget.seconds is None else stats.started + budget.seconds
    allow = template.allow_mixed_kernels
    try:
        for event in run_shards(plan(campaign, budget, template), run_fuzz_shard, backend,
                                deadline=deadline):
            if isinstance(event, Emitted):
                campaign.accept_kernel(str(event.item["kernel"]), allow)
                scenario = campaign.append(event.key, event.item)
                _count(stats, event.item, scenario)
                if on_record is not None:
                    on_record(stats, event.item)
            elif isinstance(event, Failed):
                if "MixedKernels" in event.error:
                    raise CampaignError(event.error.strip().splitlines()[-1])
                stats.failed_shards.append((event.key, event.error))
            else:
                assert isinstance(event, Finished)
    finally:
        stats.ended = time.time()
    return stats


def _count(stats: RunStats, record: dict[str, Any], scenario: Path | None) -> None:
    stats.seeds += 1
    stats.calls += int(record["calls"])
    stats.invalid += record["status"] == "invalid"
    if record["status"] == "diff":
        stats.diffs.append((record, scenario))
