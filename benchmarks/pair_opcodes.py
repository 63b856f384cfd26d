"""Opcodes, Python calls and C calls per simple pair (bench/pairs.py) in the pure build.

Wall-clock time on a shared machine varies by a third from run to run; the bytecode a call
executes does not, and in pure Python time follows it closely. This counts, with
``sys.settrace`` (``f_trace_opcodes``) and ``sys.setprofile`` (``c_call``), what each pair of
``vmamodel bench`` runs on a space of N one-page VMAs, and which functions run the most.

    python benchmarks/pair_opcodes.py [--n 20000] [--rounds 20] [--top 20]
    python benchmarks/pair_opcodes.py --baseline FILE.json   # prints after/before ratios

``--save FILE.json`` keeps the totals for a later ``--baseline``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from vmamodel.bench import model_space
from vmamodel.bench.pairs import PAIR_SLOT, PAIRS, PLACED_LENGTH, build_pair_model
from vmamodel.buildinfo import build_name
from vmamodel.constants import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_PRIVATE,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
)

P = PAGE_SIZE
RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS


def _name(frame: FrameType) -> str:
    """module.py:qualified name of the function a frame runs."""
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_qualname}"


class Counts:
    """Opcodes per function, Python calls per function, C calls."""

    def __init__(self) -> None:
        self.opcodes: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.c_calls = 0

    def run(self, fn: Callable[[], Any]) -> None:
        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                self.opcodes[_name(frame)] += 1
            return local

        def global_(frame: FrameType, event: str, arg: Any) -> Any:
            frame.f_trace_opcodes = True
            self.calls[_name(frame)] += 1
            return local

        def prof(frame: FrameType, event: str, arg: Any) -> None:
            if event == "c_call":
                self.c_calls += 1

        sys.setprofile(prof)
        sys.settrace(global_)
        try:
            fn()
        finally:
            sys.settrace(None)
            sys.setprofile(None)


def measure(n: int, rounds: int, seed: int) -> dict[str, Counts]:
    mm, base, _ = build_pair_model(n)
    rng = random.Random(seed)
    fixed, mprotect, placed = PAIRS
    out = {pair: Counts() for pair in PAIRS}
    for _ in range(rounds):
        s = base + PAIR_SLOT * rng.randrange(n)

        def fixed_pair(s: int = s) -> None:
            mm.mmap(s + 4 * P, P, RW, ANON | MAP_FIXED)
            mm.munmap(s + 4 * P, P)

        def mprotect_pair(s: int = s) -> None:
            mm.mprotect(s + 4 * P, P, PROT_READ)
            mm.mprotect(s + 4 * P, P, RW)

        def placed_pair() -> None:
            addr = mm.mmap(0, PLACED_LENGTH, PROT_READ, ANON)
            mm.munmap(addr, PLACED_LENGTH)

        out[fixed].run(fixed_pair)
        mm.mmap(s + 3 * P, 3 * P, RW, ANON | MAP_FIXED)
        out[mprotect].run(mprotect_pair)
        mm.munmap(s + 3 * P, 3 * P)
        out[placed].run(placed_pair)
    out[PLACED_BUILD] = measure_placed_build(n, rounds)
    return out


#: One mmap of ``placed_build_seconds`` (bench/pairs.py): a one-page kernel-placed mmap
#: below n others, protections alternating so that it does not merge.
PLACED_BUILD = "placed build: one mmap"


def measure_placed_build(n: int, rounds: int) -> Counts:
    """The placed build's mmap, counted on a space that n of them built (each round one more
    mmap, so the round's call is the build's next one)."""
    mm = model_space(n + rounds)
    mmap = mm.mmap
    for i in range(n):
        mmap(0, P, RW if i & 1 else PROT_READ, ANON)
    counts = Counts()
    for i in range(n, n + rounds):
        prot = RW if i & 1 else PROT_READ
        counts.run(lambda prot=prot: mmap(0, P, prot, ANON))
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--save", type=Path)
    ap.add_argument("--baseline", type=Path)
    args = ap.parse_args()
    if build_name() != "pure":
        sys.exit("pair_opcodes.py counts bytecode: run it with the pure build")
    results = measure(args.n, args.rounds, args.seed)
    r = args.rounds
    totals = {
        pair: {
            "opcodes": sum(c.opcodes.values()) / r,
            "calls": sum(c.calls.values()) / r,
            "c_calls": c.c_calls / r,
        }
        for pair, c in results.items()
    }
    base = json.loads(args.baseline.read_text()) if args.baseline else None
    print(f"N = {args.n}, {r} rounds; per pair:")
    for pair, t in totals.items():
        line = (
            f"  {pair:24} opcodes {t['opcodes']:8,.0f}  Python calls {t['calls']:5.0f}  "
            f"C calls {t['c_calls']:5.0f}"
        )
        if base is not None and pair in base:
            b = base[pair]
            line += (
                f"   after/before: opcodes {t['opcodes'] / b['opcodes']:.3f}, "
                f"calls {t['calls'] / b['calls']:.3f}"
            )
        print(line)
    for pair, c in results.items():
        by_file: Counter[str] = Counter()
        for name, ops in c.opcodes.items():
            by_file[name.split(":")[0]] += ops
        shares = ", ".join(f"{f} {ops / r:,.0f}" for f, ops in by_file.most_common(8))
        print(f"\n{pair}: opcodes per file: {shares}")
        print(f"{pair}: top functions (opcodes, calls per pair)")
        for name, ops in c.opcodes.most_common(args.top):
            print(f"  {ops / r:7.0f} {c.calls[name] / r:4.0f}  {name}")
    if args.save:
        args.save.write_text(json.dumps(totals, indent=1))


if __name__ == "__main__":
    main()
