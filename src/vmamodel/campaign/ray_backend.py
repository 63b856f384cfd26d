"""The Ray backend: each shard a Ray task, placed on nodes that offer a custom resource.

Ray is an optional dependency (``pip install 'vmamodel[ray]'``); it is imported only when a
RayBackend runs, and its absence raises :class:`RayMissing` with that command.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from vmamodel.campaign.core import Emitted, Event, Failed, Finished, Shard, ShardContext, Task

#: The custom resource of a node that can serve as a kernel oracle (give it to ``ray start
#: --resources '{"vmamodel_oracle": N}'``, N = the CPUs it may use for campaigns).
ORACLE_RESOURCE = "vmamodel_oracle"
INSTALL = "pip install 'vmamodel[ray]'"


class RayMissing(RuntimeError):
    """Ray is not installed, or the cluster lacks a resource; the message says what to do."""


def import_ray() -> Any:
    """The ``ray`` module, or RayMissing naming the command that installs it."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise RayMissing(f"the Ray backend needs ray, which is not installed: {INSTALL}") \
            from exc


def run_task(task: Task, shard: Shard, deadline: float | None) -> tuple[Any, list[Any]]:
    """The body of one Ray task: the task's result and everything it emitted."""
    ctx = ShardContext(deadline)
    return task(shard, ctx), ctx.emitted


@dataclass
class RayBackend:
    """Shards as Ray tasks; at most ``inflight`` submitted at once (None: twice the cluster's
    CPUs) so that an endless shard list is consumed only as the cluster frees up."""

    address: str | None = None
    resources: dict[str, float] = field(default_factory=lambda: {ORACLE_RESOURCE: 1})
    max_retries: int = 3
    num_cpus: float = 1
    inflight: int | None = None

    def run(self, shards: Iterator[Shard], task: Task, deadline: float | None) -> Iterator[Event]:
        ray = self.connect()
        remote = ray.remote(run_task).options(
            num_cpus=self.num_cpus, resources=self.resources, max_retries=self.max_retries,
            retry_exceptions=False,
        )
        limit = self.inflight or max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))
        pending: dict[Any, str] = {}
        try:
            for shard in shards:
                pending[remote.remote(task, shard, deadline)] = shard.key
                while len(pending) >= limit:
                    yield from self._collect(ray, pending)
            while pending:
                yield from self._collect(ray, pending)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def connect(self) -> Any:
        """Join the cluster (or start a local instance, which offers the resources on all its
        CPUs) and check that some node offers the resources the tasks need."""
        ray = import_ray()
        if not ray.is_initialized():
            if self.address is None:
                cpus = os.cpu_count() or 1
                ray.init(num_cpus=cpus, resources={name: cpus for name in self.resources},
                         include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=self.address, log_to_driver=False)
        offered = ray.cluster_resources()
        for name, amount in self.resources.items():
            if offered.get(name, 0) < amount:
                raise RayMissing(
                    f"no node of the Ray cluster offers the resource {name!r}: start the nodes "
                    f"that may serve as oracles with ray start --resources '{{\"{name}\": N}}'")
        return ray

    @staticmethod
    def _collect(ray: Any, pending: dict[Any, str]) -> Iterator[Event]:
        """Wait for one task and yield its events."""
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            key = pending.pop(ref)
            try:
                result, items = ray.get(ref)
            except Exception as exc:
                yield Failed(key, _describe(exc))
                continue
            for item in items:
                yield Emitted(key, item)
            yield Finished(key, result)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
