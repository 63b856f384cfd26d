"""Replay and explain speed on real recordings made here.

1. Records benchmarks/replay_bench.c (ROUNDS rounds of mmap, mprotect, madvise, mremap,
   munmap: 6 calls a round) with ``vmamodel record`` (or takes ``--recording DIR``, one made
   before) and times, best of REPEATS, each repeat on a freshly read recording (nothing
   parsed by an earlier repeat is reused):
   - parsing the recording (strace log, snapshots, faults);
   - the replay (every call compared, the final comparison included; also timed alone);
   - end to end: parse + replay + final comparison, what ``vmamodel replay DIR`` costs;
   - the same calls made directly on a model (arguments parsed beforehand): the model's own
     cost, the floor of any replay;
   and prints replayed calls per second against the target of the build that runs (30,000
   a second pure Python, 100,000 compiled), end to end and replay only, each with "met" or
   "missed", and the replay's own cost a call (replay only minus the model alone).
   Times are CPU times of this process (the wall clock of a shared machine mostly measures
   the others; the load average is printed first).
2. Makes a process with 60,000 VMAs (a Python child that mprotects every other page of one
   mapping) and times ``explain`` on it (target: under 5 s).

    python benchmarks/replay_bench.py [--rounds 10000] [--repeats 3] [--recording DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vmamodel.buildinfo import build_name
from vmamodel.mm import AddressSpace
from vmamodel.replay.explain import explain_source
from vmamodel.replay.record import record
from vmamodel.replay.recording import Recording, load_recording
from vmamodel.replay.replay import Replayer, _plan, smaps_to_maps
from vmamodel.replay.strace import arg_int

#: replayed calls a second, by build (``vmamodel.buildinfo.build_name()``)
TARGET_CALLS = {"pure": 30_000, "compiled": 100_000, "mixed": 30_000}
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


#: the recorded calls that are mm calls of the model
KINDS = ("mmap", "munmap", "mprotect", "madvise", "mremap", "brk")
Op = tuple[str, list[int]]


def recorded_ops(rec: Recording) -> tuple[AddressSpace, list[Op]]:
    """The seeded model of a recording and its mm calls with their arguments parsed."""
    plan, _ = _plan(rec)
    ops = [(c.name, [arg_int(a) for a in c.args]) for c in plan.calls if c.name in KINDS]
    mm = AddressSpace.from_maps(smaps_to_maps(rec.start_smaps), smaps=rec.start_smaps,
                                fs_of=rec.fs_of, **rec.traits)
    return mm, ops


def call_op(mm: AddressSpace, op: Op) -> None:
    """One recorded call made straight on the model (its errno is ignored)."""
    name, args = op
    try:
        if name == "mmap":
            mm.mmap(args[0], args[1], args[2], args[3], None, args[5])
        else:
            getattr(mm, name)(*args)
    except OSError:
        pass


def direct_calls(rec: Recording) -> float:
    """The replayed mm calls made straight on a seeded model: the model's own time."""
    mm, ops = recorded_ops(rec)
    start = time.process_time()
    for op in ops:
        call_op(mm, op)
    elapsed = time.process_time() - start
    return len(ops) / elapsed


def record_bench(rounds: int) -> Path:
    """A fresh recording of replay_bench.c (``rounds`` rounds)."""
    work = Path(tempfile.mkdtemp(prefix="vmamodel-replay-bench-"))
    binary = work / "replay_bench"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(SOURCE)], check=True)
    out = work / "rec"
    record(out, [str(binary), str(rounds)], no_randomize=True)
    return out


def timed_runs(out: Path, repeats: int) -> tuple[float, float, float, int]:
    """Best parse, replay and parse + replay CPU times over ``repeats`` runs, each on a
    freshly read recording, and the number of calls replayed."""
    parse_times, replay_times, total_times = [], [], []
    replayed = 0
    for _ in range(repeats):
        start = time.process_time()
        rec = load_recording(out)
        parsed = time.process_time()
        result = Replayer(rec).run()
        done = time.process_time()
        assert result.exact, [d.describe() for d in result.divergences]
        assert result.final_compared, result.approximations
        replayed = result.replayed
        parse_times.append(parsed - start)
        replay_times.append(done - parsed)
        total_times.append(done - start)
    return min(parse_times), min(replay_times), min(total_times), replayed


def bench_replay(out: Path, repeats: int) -> list[str]:
    target = TARGET_CALLS[build_name()]
    load_s, replay_s, total_s, replayed = timed_runs(out, repeats)
    rec = load_recording(out)
    replayer = Replayer(rec)
    entries = len(replayer.plan.calls)
    run = replayer._replay_prefix(entries)
    final_s = best(lambda: replayer._final(run), 1)
    direct = max(direct_calls(rec) for _ in range(repeats))
    rate = replayed / replay_s
    total = replayed / total_s
    own_us = (1 / rate - 1 / direct) * 1e6
    return [
        f"build: {build_name()}; recording {out}: {replayed:,} calls replayed, "
        f"{entries:,} log entries",
        f"parse the recording: {load_s:.2f} s ({replayed / load_s:,.0f} calls/s)",
        f"replay only (plan, every call run and compared, final comparison; the recording "
        f"already read): {replay_s:.2f} s = {rate:,.0f} calls/s: target {target:,} "
        f"{verdict(rate, target)} (ratio {rate / target:.2f})",
        f"  (one final comparison alone: {final_s:.2f} s)",
        f"end to end (parse + replay + final comparison): {total_s:.2f} s = {total:,.0f} "
        f"calls/s: target {target:,} {verdict(total, target)} (ratio {total / target:.2f})",
        f"the model alone on the same calls: {direct:,.0f} calls/s; replay only/model = "
        f"{rate / direct:.2f}, end to end/model = {total / direct:.2f}; the replay's own "
        f"work (replay only minus the model) {own_us:.1f} us a call",
    ]


def verdict(rate: float, target: int) -> str:
    return "met" if rate >= target else "missed"


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
    parser.add_argument("--recording", type=Path, default=None,
                        help="a recording of replay_bench.c made before (default: record one)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    out = args.recording if args.recording is not None else record_bench(args.rounds)
    for line in bench_replay(out, args.repeats):
        print(line, flush=True)
    for line in bench_explain(args.vmas):
        print(line, flush=True)


if __name__ == "__main__":
    main()
