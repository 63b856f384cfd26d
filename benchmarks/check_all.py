"""Time ``vmamodel check all`` over the three profiles (target: under 60 s on two cores).

    python benchmarks/check_all.py [-j N]

Prints the wall time, the number of runs, runs per second and the ratio to the 60 s target.
"""

from __future__ import annotations

import argparse
import os
import time

from vmamodel.check import run_check

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-j", "--jobs", type=int, default=len(os.sched_getaffinity(0)))
    jobs = parser.parse_args().jobs
    started = time.perf_counter()
    report = run_check("all", jobs=jobs)
    seconds = time.perf_counter() - started
    print(f"check all, -j {jobs}: {seconds:.1f} s, {report.runs} runs "
          f"({report.runs / seconds:.0f} runs/s), {len(report.findings)} findings; "
          f"{seconds / TARGET_SECONDS:.2f} of the {TARGET_SECONDS:.0f} s target")


if __name__ == "__main__":
    main()
