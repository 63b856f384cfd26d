"""The local backend: a pool of worker processes on this machine, one shard at a time each."""

from __future__ import annotations

import multiprocessing
import os
import queue
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from vmamodel.campaign.core import Emitted, Event, Failed, Finished, Shard, ShardContext, Task

#: How often the coordinator looks for dead workers while it waits (seconds).
POLL = 0.2
#: Workers that may die without having started a shard before the run gives up (a worker
#: that cannot even start would otherwise be replaced forever).
IDLE_DEATHS = 3


def _worker(task: Task, inbox: Any, outbox: Any, deadline: float | None) -> None:
    """A worker's life: take shards until told to stop (None), report everything."""
    while True:
        shard: Shard | None = inbox.get()
        if shard is None:
            return
        outbox.put(("start", shard.key, os.getpid()))
        ctx = ShardContext(deadline, sink=lambda item, key=shard.key: outbox.put(
            ("emit", key, item)))
        try:
            result = task(shard, ctx)
        except Exception:
            outbox.put(("error", shard.key, traceback.format_exc()))
        else:
            outbox.put(("done", shard.key, result))


@dataclass
class _Running:
    shard: Shard
    attempts: int = 1
    pid: int | None = None


@dataclass
class LocalBackend:
    """``jobs`` worker processes; a worker that dies is replaced and its shard retried."""

    jobs: int = 1
    retries: int = 1
    _procs: list[BaseProcess] = field(default_factory=list, init=False, repr=False)
    _idle_deaths: int = field(default=0, init=False, repr=False)

    def run(self, shards: Iterator[Shard], task: Task, deadline: float | None) -> Iterator[Event]:
        ctx = multiprocessing.get_context("spawn")
        inbox, outbox = ctx.Queue(), ctx.Queue()
        running: dict[str, _Running] = {}
        retry: list[_Running] = []
        try:
            self._procs = [self._start(ctx, task, inbox, outbox, deadline)
                           for _ in range(max(1, self.jobs))]
            exhausted = False
            while True:
                while len(running) < len(self._procs) and (retry or not exhausted):
                    entry = retry.pop() if retry else self._next(shards)
                    if entry is None:
                        exhausted = True
                        break
                    running[entry.shard.key] = entry
                    inbox.put(entry.shard)
                if not running:
                    return
                try:
                    message = outbox.get(timeout=POLL)
                except queue.Empty:
                    yield from self._reap(ctx, task, inbox, outbox, deadline, running, retry)
                    continue
                yield from self._handle(message, running)
        finally:
            self._stop(inbox)

    @staticmethod
    def _next(shards: Iterator[Shard]) -> _Running | None:
        shard = next(shards, None)
        return None if shard is None else _Running(shard)

    @staticmethod
    def _start(ctx: Any, task: Task, inbox: Any, outbox: Any,
               deadline: float | None) -> BaseProcess:
        proc: BaseProcess = ctx.Process(target=_worker, args=(task, inbox, outbox, deadline),
                                        daemon=True)
        proc.start()
        return proc

    @staticmethod
    def _handle(message: tuple[str, str, Any], running: dict[str, _Running]) -> Iterator[Event]:
        kind, key, payload = message
        if kind == "start":
            running[key].pid = payload
        elif kind == "emit":
            yield Emitted(key, payload)
        elif kind == "done":
            del running[key]
            yield Finished(key, payload)
        else:
            del running[key]
            yield Failed(key, payload)

    def _reap(self, ctx: Any, task: Task, inbox: Any, outbox: Any, deadline: float | None,
              running: dict[str, _Running], retry: list[_Running]) -> Iterator[Event]:
        """Replace dead workers; retry (or fail) the shard each one was running."""
        for index, proc in enumerate(self._procs):
            if proc.is_alive():
                continue
            mine = [key for key, entry in running.items() if entry.pid == proc.pid]
            if not mine:
                self._idle_deaths += 1
                if self._idle_deaths > IDLE_DEATHS * len(self._procs):
                    raise RuntimeError(f"campaign workers keep dying before they start a shard "
                                       f"(last exit code {proc.exitcode})")
            self._procs[index] = self._start(ctx, task, inbox, outbox, deadline)
            for key in mine:
                entry = running[key]
                del running[key]
                if entry.attempts <= self.retries:
                    retry.append(_Running(entry.shard, entry.attempts + 1))
                else:
                    yield Failed(key, f"worker {proc.pid} died (exit code {proc.exitcode}) "
                                 f"{entry.attempts} times")

    def _stop(self, inbox: Any) -> None:
        for _ in self._procs:
            inbox.put(None)
        for proc in self._procs:
            proc.join(timeout=1.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5.0)
        self._procs = []
