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
from replay_bench import Op, call_op, record_bench, recorded_ops

from vmamodel.buildinfo import build_name
from vmamodel.mm import AddressSpace
from vmamodel.replay.recording import load_recording

WARM_UP = 2_000


def measure(mm: AddressSpace, ops: list[Op], calls: int) -> tuple[dict[str, Counts], Counter[str]]:
    for op in ops[:WARM_UP]:
        call_op(mm, op)
    kinds: dict[str, Counts] = defaultdict(Counts)
    seen: Counter[str] = Counter()
    for op in ops[WARM_UP:WARM_UP + calls]:
        kinds[op[0]].run(lambda op=op: call_op(mm, op))  # type: ignore[misc]
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
    mm, ops = recorded_ops(load_recording(out))
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
