"""Where a placed build's time goes (bench/pairs.py ``placed_build_seconds``).

Builds n one-page VMAs by kernel-placed mmap (protections alternating, so nothing merges)
and prints, per tenth of the build, the wall and CPU time per mmap and the cyclic GC's
share (``gc.callbacks``); with ``--profile-at``, a cProfile of ``--profile-n`` placed mmaps
run once the build has reached each of those sizes.

    python benchmarks/placed_build_profile.py [--n 1000000] [--profile-at 100000,900000]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import time
from typing import Any

from vmamodel.bench import model_space
from vmamodel.buildinfo import build_name
from vmamodel.constants import MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE

P = PAGE_SIZE
RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS


class GcTimer:
    """Seconds the cyclic GC ran, per generation, through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            gen = info["generation"]
            self.seconds[gen] += time.perf_counter() - self._t0
            self.runs[gen] += 1

    def total(self) -> float:
        return sum(self.seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--profile-at", default="", help="sizes (comma separated) to profile at")
    ap.add_argument("--profile-n", type=int, default=20_000)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    profile_at = sorted(int(x) for x in args.profile_at.split(",") if x)
    mm = model_space(args.n + args.profile_n * len(profile_at))
    mmap = mm.mmap
    timer = GcTimer()
    gc.callbacks.append(timer)
    tenth = args.n // 10
    print(f"{build_name()} build, {args.n:,} placed mmaps; per tenth: us per mmap (wall, CPU), "
          "GC seconds")
    done = 0
    wall_total = cpu_total = 0.0
    reports: list[str] = []
    for part in range(10):
        stop = args.n if part == 9 else done + tenth
        gc0 = timer.total()
        w0, c0 = time.perf_counter(), time.process_time()
        while done < stop:
            target = min([stop] + [p for p in profile_at if p > done])
            for i in range(done, target):
                mmap(0, P, RW if i & 1 else PROT_READ, ANON)
            done = target
            if done in profile_at:
                reports.append(profile(mmap, done, args.profile_n, args.top))
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        wall_total += wall
        cpu_total += cpu
        count = stop - (part * tenth)
        print(f"  tenth {part + 1:2}: {wall / count * 1e6:6.1f} us wall, "
              f"{cpu / count * 1e6:6.1f} us CPU, GC {timer.total() - gc0:5.2f} s")
    gc.callbacks.remove(timer)
    print(f"total: {wall_total:.1f} s wall, {cpu_total:.1f} s CPU (profiled calls excluded "
          f"from neither); GC {timer.total():.2f} s, runs per generation {timer.runs}, "
          f"seconds {[round(s, 2) for s in timer.seconds]}")
    for r in reports:
        print(r)


def profile(mmap: Any, size: int, n: int, top: int) -> str:
    """cProfile of n placed mmaps at a space of ``size`` VMAs (they stay mapped)."""
    prof = cProfile.Profile()
    prof.enable()
    for i in range(size, size + n):
        mmap(0, P, RW if i & 1 else PROT_READ, ANON)
    prof.disable()
    out = io.StringIO()
    print(f"\ncProfile of {n:,} placed mmaps at {size:,} VMAs (tottime order):", file=out)
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


if __name__ == "__main__":
    main()
