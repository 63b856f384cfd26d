"""The local backend: a pool of worker processes on this machine, one shard at a time each.

Each worker has its own inbox, so the coordinator always knows which shard a worker holds:
when a worker dies (even before it could say anything) its shard is retried on a new one.
Each worker also reports on a pipe of its own: a worker killed in the middle of a report can
break only its own pipe, never a lock that the others would then wait on forever.
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.connection
import signal
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from vmamodel.campaign.core import Emitted, Event, Failed, Finished, Shard, ShardContext, Task

#: How often the coordinator looks for dead workers while it waits (seconds).
POLL = 0.2


def _send(outbox: Any, key: str, item: Any) -> None:
    outbox.send(("emit", key, item))


def _worker(task: Task, inbox: Any, outbox: Any, deadline: float | None) -> None:
    """A worker's life: take shards until told to stop (None), report everything."""
    # Ctrl-C reaches the whole process group: the coordinator alone handles it (and stops
    # the workers), so a worker does not die mid-record with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        shard: Shard | None = inbox.get()
        if shard is None:
            return
        ctx = ShardContext(deadline, sink=functools.partial(_send, outbox, shard.key))
        try:
            result = task(shard, ctx)
        except Exception:
            outbox.send(("error", shard.key, traceback.format_exc()))
        else:
            outbox.send(("done", shard.key, result))


@dataclass
class _Worker:
    proc: BaseProcess
    inbox: Any
    #: the receiving end of the worker's report pipe
    reports: Any
    shard: Shard | None = None
    attempts: int = 0


@dataclass
class LocalBackend:
    """``jobs`` worker processes; a worker that dies is replaced and its shard retried up to
    ``retries`` times."""

    jobs: int = 1
    retries: int = 1
    _workers: list[_Worker] = field(default_factory=list, init=False, repr=False)

    def run(self, shards: Iterator[Shard], task: Task, deadline: float | None) -> Iterator[Event]:
        ctx = multiprocessing.get_context("spawn")
        retry: list[tuple[Shard, int]] = []
        try:
            self._workers = [self._start(ctx, task, deadline) for _ in range(max(1, self.jobs))]
            exhausted = False
            while True:
                for worker in self._workers:
                    if worker.shard is None and (retry or not exhausted) \
                            and not self._assign(worker, shards, retry):
                        exhausted = True
                if all(worker.shard is None for worker in self._workers):
                    return
                ready = multiprocessing.connection.wait(
                    [worker.reports for worker in self._workers], timeout=POLL)
                if not ready:
                    yield from self._reap(ctx, task, deadline, retry)
                    continue
                for worker in [w for w in self._workers if w.reports in ready]:
                    try:
                        message: tuple[str, str, Any] = worker.reports.recv()
                    except (EOFError, OSError):  # its worker died: wait for the exit, reap
                        worker.proc.join(timeout=5.0)
                        yield from self._reap(ctx, task, deadline, retry)
                        break
                    yield from self._handle(message)
        finally:
            self._stop()

    @staticmethod
    def _assign(worker: _Worker, shards: Iterator[Shard],
                retry: list[tuple[Shard, int]]) -> bool:
        """Give the worker its next shard (a retried one first); False when none is left."""
        if retry:
            shard, attempts = retry.pop()
        else:
            next_shard = next(shards, None)
            if next_shard is None:
                return False
            shard, attempts = next_shard, 0
        worker.shard, worker.attempts = shard, attempts + 1
        worker.inbox.put(shard)
        return True

    @staticmethod
    def _start(ctx: Any, task: Task, deadline: float | None) -> _Worker:
        inbox = ctx.Queue()
        reports, outbox = ctx.Pipe(duplex=False)
        proc: BaseProcess = ctx.Process(target=_worker, args=(task, inbox, outbox, deadline),
                                        daemon=True)
        proc.start()
        outbox.close()  # the worker holds the sending end; EOF here means it is gone
        return _Worker(proc, inbox, reports)

    def _handle(self, message: tuple[str, str, Any]) -> Iterator[Event]:
        kind, key, payload = message
        if kind == "emit":
            yield Emitted(key, payload)
            return
        for worker in self._workers:
            if worker.shard is not None and worker.shard.key == key:
                worker.shard = None
        yield Finished(key, payload) if kind == "done" else Failed(key, payload)

    def _reap(self, ctx: Any, task: Task, deadline: float | None,
              retry: list[tuple[Shard, int]]) -> Iterator[Event]:
        """Replace dead workers; retry (or fail) the shard each one held."""
        for index, worker in enumerate(self._workers):
            if worker.proc.is_alive():
                continue
            worker.reports.close()
            self._workers[index] = self._start(ctx, task, deadline)
            shard = worker.shard
            if shard is None:
                continue
            if worker.attempts <= self.retries:
                retry.append((shard, worker.attempts))
            else:
                yield Failed(shard.key, f"worker {worker.proc.pid} died (exit code "
                             f"{worker.proc.exitcode}) {worker.attempts} times")

    def _stop(self) -> None:
        for worker in self._workers:
            if worker.proc.is_alive():
                worker.inbox.put(None)
        for worker in self._workers:
            worker.proc.join(timeout=1.0)
            if worker.proc.is_alive():
                worker.proc.terminate()
                worker.proc.join(timeout=5.0)
        self._workers = []
