"""Opcodes and Python calls per call kind of a replay's model work, in the pure build.

replay_bench.py's "model alone" (the recorded mm calls of replay_bench.c made straight on a
model, arguments parsed beforehand) moves by a third between runs on a shared machine; the
bytecode those calls execute does not. This counts it per call kind (mmap, mprotect,
madvise, mremap, munmap), with the same ``sys.settrace`` counter as pair_opcodes.py, over
the calls after a warm-up (the first 2,000 calls fill the ring of live allocations that
replay_bench.c keeps), and shows which files and functions run the most.

    python benchmarks/replay_opcodes.py [--rounds 1000] [--calls 1800] [--recording DIR]
    python benchmarks/replay_opcodes.py --save FILE.json      # keep the figures
    python benchmarks/replay_opcodes.py --baseline FILE.json  # print after/before ratios
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from pair_opcodes import Counts
from replay_bench import record_bench

from vmamodel.buildinfo import build_name
from vmamodel.mm import AddressSpace
from vmamodel.replay.recording import load_recording
from vmamodel.replay.replay import _plan, smaps_to_maps
from vmamodel.replay.strace import arg_int

KINDS = ("mmap", "munmap", "mprotect", "madvise", "mremap", "brk")
WARM_UP = 2_000
Op = tuple[str, list[int]]


def recorded_ops(out: Path) -> tuple[AddressSpace, list[Op]]:
    """The seeded model of a recording and its mm calls with their arguments parsed."""
    rec = load_recording(out)
    plan, _ = _plan(rec)
    ops = [(c.name, [arg_int(a) for a in c.args]) for c in plan.calls if c.name in KINDS]
    mm = AddressSpace.from_maps(smaps_to_maps(rec.start_smaps), smaps=rec.start_smaps,
                                fs_of=rec.fs_of, **rec.traits)
    return mm, ops


def call(mm: AddressSpace, op: Op) -> None:
    """One recorded call, as replay_bench.direct_calls makes it (its errno is ignored)."""
    name, args = op
    try:
        if name == "mmap":
            mm.mmap(args[0], args[1], args[2], args[3], None, args[5])
        else:
            getattr(mm, name)(*args)
    except OSError:
        pass


def measure(mm: AddressSpace, ops: list[Op], calls: int) -> tuple[dict[str, Counts], Counter[str]]:
    for op in ops[:WARM_UP]:
        call(mm, op)
    kinds: dict[str, Counts] = defaultdict(Counts)
    seen: Counter[str] = Counter()
    for op in ops[WARM_UP:WARM_UP + calls]:
        kinds[op[0]].run(lambda op=op: call(mm, op))  # type: ignore[misc]
        seen[op[0]] += 1
    return kinds, seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1_000, help="rounds of replay_bench.c")
    ap.add_argument("--calls", type=int, default=1_800, help="calls counted after the warm-up")
    ap.add_argument("--recording", type=Path, help="a recording of replay_bench.c")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--save", type=Path)
    ap.add_argument("--baseline", type=Path)
    args = ap.parse_args()
    if build_name() != "pure":
        sys.exit("replay_opcodes.py counts bytecode: run it with the pure build")
    base = None
    if args.baseline is not None:
        try:
            base = json.loads(args.baseline.read_text())
        except (OSError, ValueError) as exc:
            sys.exit(f"--baseline {args.baseline}: {exc}")
    out = args.recording if args.recording is not None else record_bench(args.rounds)
    mm, ops = recorded_ops(out)
    if len(ops) < WARM_UP + args.calls:
        sys.exit(f"{out}: {len(ops)} calls; need {WARM_UP + args.calls} (more --rounds)")
    kinds, seen = measure(mm, ops, args.calls)
    totals = {
        kind: {
            "opcodes": sum(c.opcodes.values()) / seen[kind],
            "calls": sum(c.calls.values()) / seen[kind],
        }
        for kind, c in kinds.items()
    }
    every = sum(seen.values())
    totals["all"] = {
        "opcodes": sum(sum(c.opcodes.values()) for c in kinds.values()) / every,
        "calls": sum(sum(c.calls.values()) for c in kinds.values()) / every,
    }
    print(f"{out}: {every} calls counted after {WARM_UP}; per call:")
    for kind, t in totals.items():
        line = f"  {kind:9} opcodes {t['opcodes']:7,.0f}  Python calls {t['calls']:6.1f}"
        if base is not None and kind in base:
            b = base[kind]
            line += (f"   after/before: opcodes {t['opcodes'] / b['opcodes']:.3f}, "
                     f"calls {t['calls'] / b['calls']:.3f}")
        print(line)
    for kind, c in kinds.items():
        by_file: Counter[str] = Counter()
        for name, n in c.opcodes.items():
            by_file[name.split(":")[0]] += n
        n = seen[kind]
        print(f"\n{kind}: opcodes per file: "
              + ", ".join(f"{f} {v / n:,.0f}" for f, v in by_file.most_common(8)))
        for name, v in c.opcodes.most_common(args.top):
            print(f"  {v / n:7.0f} {c.calls[name] / n:5.2f}  {name}")
    if args.save:
        args.save.write_text(json.dumps(totals, indent=1))


if __name__ == "__main__":
    main()
