"""Campaigns: a list of shards of work run by a pool of processes or on a Ray cluster.

A generic executor for long jobs that split into independent pieces: ``vmamodel fuzz`` uses it
for seed ranges, and any other tool (the checker's exploration, ...) can hand it its own job
list. It knows nothing about the model: a job is

- shards: an iterable of :class:`Shard` (a unique ``key`` and a picklable ``work``
  description). It is consumed lazily, only as workers become free, so it may be endless
  (a campaign bounded by time);
- a task: a module-level function ``task(shard, ctx) -> result`` (picklable by reference).
  It may stream picklable items back with ``ctx.emit(item)`` while it runs (per-seed records,
  counts), should look at ``ctx.expired`` between units of work when the run has a deadline,
  and returns a picklable result (a summary) at the end.

and :func:`run_shards` yields what comes back, in the order it arrives::

    from vmamodel.campaign import LocalBackend, Shard, run_shards, Emitted, Finished, Failed

    def square_all(shard: Shard, ctx: ShardContext) -> int:   # at module level
        for n in shard.work:
            ctx.emit(n * n)
        return len(shard.work)

    shards = [Shard(f"part{i}", range(i * 10, i * 10 + 10)) for i in range(4)]
    for event in run_shards(shards, square_all, LocalBackend(jobs=2)):
        match event:
            case Emitted(key, item): ...      # one ctx.emit() of shard ``key``
            case Finished(key, result): ...   # the task returned (after all its Emitted)
            case Failed(key, error): ...      # it raised, or its worker died (after retries)

Every shard ends in exactly one Finished or Failed. Leaving the loop early (break, an
exception, KeyboardInterrupt) stops the workers; what was emitted so far has been yielded.

Backends:

- :class:`LocalBackend` (``jobs`` worker processes, started with the ``spawn`` method): each
  worker runs one shard at a time, so a task that keeps a resource (an oracle child) has one
  per worker. Items stream back as they are emitted. A worker that dies is replaced and its
  shard retried up to ``retries`` times.
- :class:`RayBackend` (``vmamodel.campaign.ray_backend``; needs ``pip install 'vmamodel[ray]'``):
  each shard is a Ray task with ``max_retries`` (worker or node failures) that requires
  ``resources`` (default ``{"vmamodel_oracle": 1}``, the custom resource that marks nodes able
  to serve as a kernel oracle; give ``{}`` for jobs that need none). It joins the cluster at
  ``address`` (None: the Ray instance this process already started, else a new local one). A
  task's items travel back with its result, so only shard descriptions, emitted items and
  results cross the network.

The deadline (``run_shards(..., deadline=time.time() + 600)``, seconds since the epoch) stops
handing out shards once passed and is visible to tasks as ``ctx.expired``; tasks that honour it
return early with what they did.
"""

from __future__ import annotations

from vmamodel.campaign.core import (
    Backend,
    Emitted,
    Event,
    Failed,
    Finished,
    Shard,
    ShardContext,
    Task,
    run_shards,
)
from vmamodel.campaign.local import LocalBackend
from vmamodel.campaign.ray_backend import RayBackend, RayMissing

__all__ = [
    "Backend",
    "Emitted",
    "Event",
    "Failed",
    "Finished",
    "LocalBackend",
    "RayBackend",
    "RayMissing",
    "Shard",
    "ShardContext",
    "Task",
    "run_shards",
]
