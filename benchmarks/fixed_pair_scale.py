"""The fixed mmap + munmap pair alone, at each size, and the ratio of the largest to the first.

Builds N one-page VMAs as ``vmamodel bench`` does (bench/pairs.py ``build_pair_model``), then
runs ``--pairs`` fixed pairs at random slots ``--passes`` times, each pair's least time
counting (as the bench keeps each call's least): without the bench's other pairs and the
kernel run between them, a size's figure moves less with the machine's load.

    python benchmarks/fixed_pair_scale.py [--sizes 1000,1000000] [--pairs 1000] [--passes 9]
        [--uneven]

``--uneven`` spaces the VMAs unevenly (slots of 8 to 64 pages at random), where the compiled
block search's first guess (tree.py, ``_guess``) is seldom right.

With ``--passes 1`` every pair is the first touch of its slot. Under valgrind, the pairs run
through ``map()``, so ``--collect-atstart=no --toggle-collect=map_next`` counts them alone
(the build calls the same mmap entry):

    valgrind --tool=callgrind --cache-sim=yes --D1=32768,8,64 --LL=524288,8,64 \\
        --collect-atstart=no --toggle-collect=map_next \\
        python benchmarks/fixed_pair_scale.py --sizes 1000000 --pairs 2000 --passes 1
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from typing import Any

from vmamodel.bench import model_space
from vmamodel.bench.pairs import PAIR_SLOT, build_pair_model
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
FIXED = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED


def uneven_model(n: int, seed: int) -> tuple[Any, list[int]]:
    """(space, slot starts): n one-page VMAs, each at the start of a slot of 8 to 64 pages
    chosen at random, so that no block of the tree holds evenly spaced VMAs."""
    rng = random.Random(seed)
    mm = model_space(n)
    sizes = [PAIR_SLOT * rng.randint(1, 8) for _ in range(n)]
    addr = mm.mmap_base - sum(sizes)
    starts = []
    for size in sizes:
        mm.mmap(addr, P, RW, FIXED)
        starts.append(addr)
        addr += size
    return mm, starts


def pair_us(n: int, pairs: int, passes: int, seed: int, uneven: bool = False) -> float:
    """Mean over the pairs of each pair's least time (us) over the passes, on n VMAs."""
    rng = random.Random(seed)
    if uneven:
        mm, starts = uneven_model(n, seed)
        slots = [starts[rng.randrange(n)] + 4 * P for _ in range(pairs)]
    else:
        mm, base, _ = build_pair_model(n)
        slots = [base + PAIR_SLOT * rng.randrange(n) + 4 * P for _ in range(pairs)]
    gc.collect()
    mmap, munmap, clock = mm.mmap, mm.munmap, time.perf_counter_ns
    best = [1 << 62] * pairs
    times: list[int] = []

    def one(addr: int) -> None:
        t0 = clock()
        mmap(addr, P, RW, FIXED)
        munmap(addr, P)
        times.append(clock() - t0)

    for _ in range(passes):
        times.clear()
        for _ in map(one, slots):
            pass
        best = [min(a, b) for a, b in zip(best, times, strict=True)]
    return sum(best) / pairs / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,1000000")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--passes", type=int, default=9)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--uneven", action="store_true",
                    help="slots of 8 to 64 pages at random instead of the bench's 8")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    figures = {n: pair_us(n, args.pairs, args.passes, args.seed, args.uneven) for n in sizes}
    layout = "uneven slots" if args.uneven else "the bench's slots"
    print(f"{build_name()} build, {args.pairs} fixed pairs, least of {args.passes} passes,"
          f" {layout}")
    for n, us in figures.items():
        print(f"  {n:>9,} VMAs: {us:6.2f} us a pair")
    first, last = sizes[0], sizes[-1]
    print(f"  {last:,} vs {first:,}: {figures[last] / figures[first]:.2f}x")


if __name__ == "__main__":
    main()
