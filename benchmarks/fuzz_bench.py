"""Calls per second of ``vmamodel fuzz``: the model alone, the model + the kernel, in one
process, through the local backend and through Ray on this machine.

    python benchmarks/fuzz_bench.py [--seconds 20] [--length 100] [--jobs 2] [--no-ray]

Each figure runs fresh seeds (no shrinking; no planted bug) for about ``--seconds`` and
prints calls/s and calls/s per core (a worker is one process, so one core at most), then the
ratios between them. On a machine shared with other work, the per-core figures fall with the
load: the load average is printed alongside.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

from vmamodel.campaign import Backend, LocalBackend, RayBackend, RayMissing
from vmamodel.fuzz.lockstep import run_sequence
from vmamodel.fuzz.run import Budget, run_campaign
from vmamodel.fuzz.shard import GENERATOR_VERSION, FuzzWork, host_traits, kernel_release
from vmamodel.fuzz.store import Campaign


def in_process(seconds: float, length: int, host: bool) -> float:
    """calls/s of run_sequence in this process."""
    calls, seed, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        calls += len(run_sequence(seed, length, host=host).steps)
        seed += 1
    return calls / (time.perf_counter() - start)


def through(backend: Backend, seconds: float, length: int, host: bool) -> float:
    """calls/s of a whole campaign (worker start-up included) on ``backend``."""
    with tempfile.TemporaryDirectory(prefix="vmamodel-fuzz-bench-") as tmp:
        campaign = Campaign.open(tmp, length=length, shard_size=4, generator=GENERATOR_VERSION,
                                 kernel=kernel_release(), traits=host_traits(),
                                 allow_mixed_kernels=False)
        work = FuzzWork((), length, kernel_release(), shrink=False, host=host)
        stats = run_campaign(campaign, Budget(seconds=seconds), work, backend)
    return stats.rate


def row(name: str, cores: int, measure: Callable[[], float]) -> float:
    rate = measure()
    print(f"{name:<34} {cores:>5} {rate:>10,.0f} {rate / cores:>14,.0f}", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    s, n, j = args.seconds, args.length, args.jobs
    print(f"kernel {kernel_release()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; {n} calls a sequence, ~{s:.0f} s a figure")
    print(f"{'':<34} {'cores':>5} {'calls/s':>10} {'calls/s/core':>14}")
    alone = row("model alone, in process", 1, lambda: in_process(s, n, False))
    both = row("model + kernel, in process", 1, lambda: in_process(s, n, True))
    local1 = row("model + kernel, local -j 1", 1,
                 lambda: through(LocalBackend(jobs=1), s, n, True))
    localj = row(f"model + kernel, local -j {j}", j,
                 lambda: through(LocalBackend(jobs=j), s, n, True))
    row(f"model alone, local -j {j}", j, lambda: through(LocalBackend(jobs=j), s, n, False))
    ray_rate = None
    if not args.no_ray:
        try:
            ray_backend = RayBackend()
            ray_backend.connect()  # a local instance; its start-up is not timed
            ray_rate = row(f"model + kernel, Ray ({j} CPUs)", j,
                           lambda: through(ray_backend, s, n, True))
        except RayMissing as exc:
            print(f"Ray: skipped ({exc})")
    print(f"the kernel side costs: model alone / model + kernel = {alone / both:.1f}x")
    print(f"local -j 1 / in process = {local1 / both:.2f}; "
          f"local -j {j} / -j 1 = {localj / local1:.2f}")
    if ray_rate is not None:
        print(f"Ray / local -j {j} = {ray_rate / localj:.2f}")


if __name__ == "__main__":
    main()
