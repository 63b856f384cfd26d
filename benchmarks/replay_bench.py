"""Replay and explain speed on real recordings made here.

1. Records benchmarks/replay_bench.c (ROUNDS rounds of mmap, mprotect, madvise, mremap,
   munmap: 6 calls a round) with ``vmamodel record`` and times, best of REPEATS:
   - parsing the recording (strace log, snapshots, faults);
   - the replay (every call compared; the final comparison is timed apart);
   - the same calls made directly on a model (arguments parsed beforehand): the model's own
     cost, the floor of any replay;
   and prints replayed calls per second against the target (30,000 a second, pure Python).
   Times are CPU times of this process (the wall clock of a shared machine mostly measures
   the others; the load average is printed first).
2. Makes a process with 60,000 VMAs (a Python child that mprotects every other page of one
   mapping) and times ``explain`` on it (target: under 5 s).

    python benchmarks/replay_bench.py [--rounds 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vmamodel.mm import AddressSpace
from vmamodel.replay.explain import explain_source
from vmamodel.replay.record import record
from vmamodel.replay.recording import Recording, load_recording
from vmamodel.replay.replay import Replayer, _plan, smaps_to_maps
from vmamodel.replay.strace import arg_int

TARGET_CALLS = 30_000
TARGET_EXPLAIN_S = 5.0
SOURCE = Path(__file__).with_name("replay_bench.c")

CHILD = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
n = int(sys.argv[1])
base = libc.mmap(None, n * 4096, 3, 0x22, -1, 0)
for i in range(0, n, 2):
    if libc.mprotect(base + i * 4096, 4096, 0) != 0:
        raise SystemExit("mprotect failed at %d" % i)
print("ready", flush=True)
sys.stdin.read()
"""


def best(fn: object, repeats: int) -> float:
    """The best CPU time (user + system of this process) of ``repeats`` runs: on a shared
    machine the wall clock mostly measures the other processes."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()  # type: ignore[operator]
        times.append(time.process_time() - start)
    return min(times)


def direct_calls(rec: Recording) -> float:
    """The replayed mm calls made straight on a seeded model: the model's own time."""
    plan, _ = _plan(rec)
    ops = []
    for call in plan.calls:
        if call.name in ("mmap", "munmap", "mprotect", "madvise", "mremap", "brk"):
            ops.append((call.name, [arg_int(a) for a in call.args]))
    mm = AddressSpace.from_maps(smaps_to_maps(rec.start_smaps), smaps=rec.start_smaps,
                                fs_of=rec.fs_of, **rec.traits)
    start = time.process_time()
    for name, args in ops:
        try:
            if name == "mmap":
                mm.mmap(args[0], args[1], args[2], args[3], None, args[5])
            else:
                getattr(mm, name)(*args)
        except OSError:
            pass
    elapsed = time.process_time() - start
    return len(ops) / elapsed


def bench_replay(rounds: int, repeats: int) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="vmamodel-replay-bench-"))
    binary = work / "replay_bench"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(SOURCE)], check=True)
    out = work / "rec"
    record(out, [str(binary), str(rounds)], no_randomize=True)
    load_s = best(lambda: load_recording(out), repeats)
    rec = load_recording(out)
    replayer = Replayer(rec)
    calls = list(replayer.plan.calls)
    timing: dict[str, float] = {}

    def run_replay() -> None:
        r = Replayer(rec)
        result = r.run()
        assert result.exact, [d.describe() for d in result.divergences]
        timing["replayed"] = result.replayed

    replay_s = best(run_replay, repeats)
    run = replayer._replay_prefix(len(calls))
    final_s = best(lambda: replayer._final(run), 1)
    direct = max(direct_calls(rec) for _ in range(repeats))
    replayed = int(timing["replayed"])
    rate = replayed / replay_s
    return [
        f"recording: {replayed:,} calls replayed, {len(calls):,} log entries "
        f"({rounds:,} rounds of replay_bench.c)",
        f"parse the recording: {load_s:.2f} s ({replayed / load_s:,.0f} calls/s)",
        f"replay: {replay_s:.2f} s including the final comparison = {rate:,.0f} calls/s "
        f"(target {TARGET_CALLS:,}: ratio {rate / TARGET_CALLS:.2f})",
        f"  (one replay with the final comparison: {final_s:.2f} s)",
        f"the model alone on the same calls: {direct:,.0f} calls/s; replay/model = "
        f"{rate / direct:.2f}",
    ]


def bench_explain(vmas: int) -> list[str]:
    pages = vmas  # every other page PROT_NONE: one VMA a page
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(pages)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            return ["explain: the child could not make its VMAs"]
        wall = time.perf_counter()
        start = time.process_time()
        exp = explain_source([str(child.pid)])
        elapsed = time.process_time() - start
        wall = time.perf_counter() - wall
    finally:
        child.kill()
        child.wait()
    return [
        f"explain pid with {exp.vma_count:,} VMAs: {elapsed:.2f} s CPU ({wall:.2f} s wall) "
        f"(target < {TARGET_EXPLAIN_S:.0f} s: ratio {elapsed / TARGET_EXPLAIN_S:.2f})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vmas", type=int, default=60_000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    for line in bench_replay(args.rounds, args.repeats):
        print(line, flush=True)
    for line in bench_explain(args.vmas):
        print(line, flush=True)


if __name__ == "__main__":
    main()
