"""Module-level tasks for the executor tests (a spawned worker imports them by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from vmamodel.campaign import Shard, ShardContext


def squares(shard: Shard, ctx: ShardContext) -> int:
    """Emits the square of each number of the shard; returns how many."""
    for n in shard.work:
        ctx.emit(n * n)
    return len(shard.work)


def fail_on_three(shard: Shard, ctx: ShardContext) -> int:
    if 3 in shard.work:
        raise ValueError("three is not allowed")
    return squares(shard, ctx)


def die_once(shard: Shard, ctx: ShardContext) -> Any:
    """Kills its worker the first time it sees a shard (a marker file remembers), then
    works: the backend must retry the shard on a new worker."""
    marker = Path(shard.work[0]) / f"{shard.key}.died"
    if not marker.exists():
        marker.write_text("x")
        os._exit(3)
    return "survived"


def die_always(shard: Shard, ctx: ShardContext) -> Any:
    os._exit(4)


def slow(shard: Shard, ctx: ShardContext) -> int:
    """Emits a tick every 50 ms until the deadline."""
    ticks = 0
    while not ctx.expired:
        time.sleep(0.05)
        ticks += 1
        ctx.emit(ticks)
    return ticks
