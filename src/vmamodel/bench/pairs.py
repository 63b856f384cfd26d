"""The simple pairs of ``vmamodel bench``: each common call and the call that undoes it, timed
on its own, on the model and on the host kernel in one run.

The space holds N one-page anonymous VMAs, one every :data:`PAIR_SLOT` (eight pages), so no
two merge. Each round picks a slot at random and runs three pairs there:

- ``fixed mmap + munmap``: a one-page MAP_FIXED mapping in the middle of the slot's free
  pages (touching no neighbour: a new VMA), then its munmap;
- ``mprotect split + merge``: on a three-page VMA mapped for the purpose (untimed), an
  mprotect of its middle page (one VMA becomes three), then the mprotect that restores the
  protection (three merge back into one); the three-page VMA is unmapped again (untimed);
- ``placed mmap + munmap``: a kernel-placed eight-page read-only mapping (longer than any
  free gap of the region, so the search passes the whole region; read-only, so that it merges
  with no neighbour on either side: the model's lands below the region, the kernel's below
  the runner's own mappings), then its munmap.

A pair's time is the sum of its two calls' least times over the passes, averaged over the
rounds. The kernel runs the very same ops through the C runner (or ctypes); the model runs
them in this process and, with ``other_python``, in a second build's interpreter (the pure
build beside the compiled one, or the reverse), through :func:`main` in a subprocess. With
several trials, the kernel and each build are measured in turn, trial after trial (so that a
neighbour's load on the shared CPUs falls on every side alike), and each side's figure is its
least trial, as each call's is its least pass; the report gives the spread between trials.
"""

from __future__ import annotations

import gc
import json
import random
import subprocess
import sys
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmamodel.bench import (
    ANON,
    RW,
    CallSequence,
    build_model,
    bytes_per_vma,
    model_space,
    run_kernel,
    run_model_ops,
)
from vmamodel.buildinfo import build_name
from vmamodel.constants import MAP_FIXED, PAGE_SIZE, PROT_READ
from vmamodel.host.bench_kernel import (
    OP_MMAP_FIXED,
    OP_MMAP_PLACED,
    OP_MPROTECT,
    OP_MUNMAP,
    OP_MUNMAP_REG,
)

P = PAGE_SIZE
PAIR_SLOT = 8 * P
PAIR_VMA = P
PLACED_LENGTH = 8 * P  # longer than the seven free pages of a slot
PAIRS = ("fixed mmap + munmap", "mprotect split + merge", "placed mmap + munmap")
SETUP = "setup"
DEFAULT_PAIR_ROUNDS = 2_000
MID_N = 65_530
SMALL_N, LARGE_N = 1_000, 1_000_000

#: (what, limit) of each target; "ratio" targets are model/kernel at MID_N.
RATIO_TARGET = {"compiled": 2.0, "pure": 12.0}
MEMORY_TARGET = {"compiled": 200.0, "pure": 300.0}
SCALE_TARGET = 1.5
PLACED_BUILD_TARGET_S = 15.0


@dataclass(frozen=True)
class PairSequence:
    """The ops (as the runners read them) and each op's label: a pair's name or "setup"."""

    seq: CallSequence
    labels: tuple[str, ...]


def make_pair_sequence(slots: int, rounds: int, seed: int) -> PairSequence:
    """``rounds`` rounds of the three pairs, each round on a slot chosen at random."""
    rng = random.Random(seed)
    ops = array("q")
    labels: list[str] = []

    def add(label: str, op: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0) -> None:
        ops.extend((op, a, b, c, d, 0))
        labels.append(label)

    fixed, mprotect, placed = PAIRS
    for _ in range(rounds):
        s = PAIR_SLOT * rng.randrange(slots)
        add(fixed, OP_MMAP_FIXED, s + 4 * P, P, RW, ANON | MAP_FIXED)
        add(fixed, OP_MUNMAP, s + 4 * P, P)
        add(SETUP, OP_MMAP_FIXED, s + 3 * P, 3 * P, RW, ANON | MAP_FIXED)
        add(mprotect, OP_MPROTECT, s + 4 * P, P, PROT_READ)
        add(mprotect, OP_MPROTECT, s + 4 * P, P, RW)
        add(SETUP, OP_MUNMAP, s + 3 * P, 3 * P)
        add(placed, OP_MMAP_PLACED, 0, PLACED_LENGTH, PROT_READ, ANON)
        add(placed, OP_MUNMAP_REG, 0, PLACED_LENGTH)
    return PairSequence(CallSequence(ops, rounds, seed, slots, ()), tuple(labels))


def pair_means(labels: Sequence[str], ns: Sequence[int], rounds: int) -> dict[str, float]:
    """Nanoseconds per pair (both calls), averaged over the rounds."""
    totals = dict.fromkeys(PAIRS, 0)
    for label, value in zip(labels, ns, strict=True):
        if label != SETUP:
            totals[label] += value
    return {pair: total / rounds for pair, total in totals.items()}


# -- the model side -------------------------------------------------------------------------


def build_pair_model(n: int) -> tuple[Any, int, float]:
    """(address space, region base, seconds to build n one-page VMAs with n fixed mmaps)."""
    return build_model(n, PAIR_SLOT, PAIR_VMA)


def placed_build_seconds(n: int) -> float:
    """Seconds to build n one-page VMAs with n kernel-placed mmaps (alternating protections,
    so that neighbours do not merge)."""
    mm = model_space(n)
    mmap = mm.mmap
    t0 = time.perf_counter()
    for i in range(n):
        mmap(0, P, RW if i & 1 else PROT_READ, ANON)
    elapsed = time.perf_counter() - t0
    del mm
    gc.collect()
    return elapsed


@dataclass
class ModelPairs:
    """One build's figures: per size, ns per pair, errnos of the ops, build seconds."""

    build: str
    pairs: dict[int, dict[str, float]] = field(default_factory=dict)
    errnos: dict[int, list[int]] = field(default_factory=dict)
    build_s: dict[int, float] = field(default_factory=dict)
    bytes_per_vma: float | None = None
    placed_build_s: float | None = None
    placed_build_n: int = 0
    #: per size and pair, the largest trial's mean over the least (1.0: one trial)
    spread: dict[int, dict[str, float]] = field(default_factory=dict)


def run_model_pairs(
    sizes: Sequence[int], rounds: int, seed: int, repeats: int, kernel_ns: dict[int, int],
    memory_n: int, placed_n: int,
) -> ModelPairs:
    """The model in this process at each size. ``kernel_ns`` gives, per size, the slots the
    kernel holds (the sequence uses only those, so both sides run the same calls)."""
    out = ModelPairs(build_name())
    for n in sizes:
        pseq = make_pair_sequence(kernel_ns.get(n) or n, rounds, seed)
        mm, base, build_s = build_pair_model(n)
        ns, errnos = run_model_ops(mm, base, pseq.seq)
        for _ in range(repeats - 1):
            again, _ = run_model_ops(mm, base, pseq.seq)
            ns = array("q", map(min, ns, again))
        out.pairs[n] = pair_means(pseq.labels, ns, rounds)
        out.errnos[n] = list(errnos)
        out.build_s[n] = build_s
        del mm
        gc.collect()
    if memory_n:
        out.bytes_per_vma = bytes_per_vma(memory_n)
    if placed_n:
        out.placed_build_s = placed_build_seconds(placed_n)
        out.placed_build_n = placed_n
    return out


def run_other_build(
    python: str, sizes: Sequence[int], rounds: int, seed: int, repeats: int,
    kernel_ns: dict[int, int], memory_n: int, placed_n: int, workdir: Path,
) -> ModelPairs:
    """The same model measurement in another interpreter (another build of vmamodel)."""
    request = workdir / "pairs-request.json"
    result = workdir / "pairs-result.json"
    request.write_text(json.dumps({
        "sizes": list(sizes), "rounds": rounds, "seed": seed, "repeats": repeats,
        "kernel_ns": {str(k): v for k, v in kernel_ns.items()}, "memory_n": memory_n,
        "placed_n": placed_n,
    }))
    proc = subprocess.run(
        [python, "-m", "vmamodel.bench.pairs", str(request), str(result)],
        capture_output=True, timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{python} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    data = json.loads(result.read_text())
    return ModelPairs(
        data["build"],
        {int(k): v for k, v in data["pairs"].items()},
        {int(k): v for k, v in data["errnos"].items()},
        {int(k): v for k, v in data["build_s"].items()},
        data["bytes_per_vma"], data["placed_build_s"], data["placed_build_n"],
    )


def main(argv: list[str]) -> None:
    """``python -m vmamodel.bench.pairs REQUEST RESULT``: :func:`run_model_pairs` for
    :func:`run_other_build`, JSON in and out."""
    req = json.loads(Path(argv[1]).read_text())
    res = run_model_pairs(
        req["sizes"], req["rounds"], req["seed"], req["repeats"],
        {int(k): v for k, v in req["kernel_ns"].items()}, req["memory_n"], req["placed_n"],
    )
    Path(argv[2]).write_text(json.dumps({
        "build": res.build, "pairs": res.pairs, "errnos": res.errnos, "build_s": res.build_s,
        "bytes_per_vma": res.bytes_per_vma, "placed_build_s": res.placed_build_s,
        "placed_build_n": res.placed_build_n,
    }))


# -- the kernel side ------------------------------------------------------------------------


@dataclass
class KernelPairs:
    runner: str
    n: int
    pairs: dict[str, float]
    errnos: list[int]
    spread: dict[str, float] = field(default_factory=dict)


# -- trials ---------------------------------------------------------------------------------


def least_means(trials: Sequence[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per pair, the least of the trials' means, and the spread (largest / least)."""
    least = {pair: min(t[pair] for t in trials) for pair in trials[0]}
    spread = {pair: max(t[pair] for t in trials) / least[pair] if least[pair] else 1.0
              for pair in least}
    return least, spread


def least_model(trials: Sequence[ModelPairs]) -> ModelPairs:
    """One build's trials as one: each size's least means; the rest from the first trial
    (the only one that measures memory and the placed build)."""
    first = trials[0]
    out = ModelPairs(first.build, errnos=first.errnos, build_s=first.build_s,
                     bytes_per_vma=first.bytes_per_vma, placed_build_s=first.placed_build_s,
                     placed_build_n=first.placed_build_n)
    for n in first.pairs:
        out.pairs[n], out.spread[n] = least_means([t.pairs[n] for t in trials])
    return out


def least_kernel(trials: Sequence[KernelPairs]) -> KernelPairs:
    """The kernel's trials at one size as one (least means)."""
    first = trials[0]
    pairs, spread = least_means([t.pairs for t in trials])
    return KernelPairs(first.runner, first.n, pairs, first.errnos, spread)


def widest_spread(builds: Sequence[ModelPairs], kernel: dict[int, KernelPairs]
                  ) -> tuple[float, str]:
    """The largest spread between trials, and whose it is."""
    spreads = [(s, f"kernel, {pair}, {n:,} VMAs") for n, k in kernel.items()
               for pair, s in k.spread.items()]
    spreads += [(s, f"{b.build}, {pair}, {n:,} VMAs") for b in builds
                for n, per in b.spread.items() for pair, s in per.items()]
    return max(spreads, default=(1.0, "-"))


def run_kernel_pairs(
    command: list[str], runner: str, n: int, rounds: int, seed: int, repeats: int,
    workdir: Path,
) -> KernelPairs:
    pseq = make_pair_sequence(n, rounds, seed)
    timings = run_kernel(command, n, pseq.seq, repeats, workdir, PAIR_SLOT, PAIR_VMA)
    return KernelPairs(runner, n, pair_means(pseq.labels, timings.ns, rounds),
                       list(timings.errnos))


# -- the report -----------------------------------------------------------------------------


def _target(ok: bool) -> str:
    return "met" if ok else "MISSED"


def pairs_table(
    sizes: Sequence[int], builds: Sequence[ModelPairs], kernel: dict[int, KernelPairs],
) -> Iterator[str]:
    """The per-pair table: us per pair on the kernel and on each build, with the ratios."""
    yield ("Simple pairs (us per pair: both calls, each call's least time over the passes, "
           "mean over the rounds; one-page VMAs)")
    head = f"  {'pair':<24}{'VMAs':>11}{'kernel':>9}"
    for build in builds:
        head += f"{build.build:>10}{'ratio':>8}"
    yield head
    for pair in PAIRS:
        for n in sizes:
            k = kernel.get(n)
            line = f"  {pair:<24}{n:>11,}"
            line += f"{k.pairs[pair] / 1000:>9.2f}" if k is not None else f"{'-':>9}"
            for build in builds:
                model = build.pairs[n][pair]
                line += f"{model / 1000:>10.2f}"
                line += (f"{model / k.pairs[pair]:>7.1f}x" if k is not None else f"{'-':>8}")
            yield line
    for n in sizes:
        k = kernel.get(n)
        if k is None:
            yield f"  ({n:,} VMAs: past the host's max_map_count, the model alone)"
            continue
        for build in builds:
            differ = sum(1 for m, h in zip(build.errnos[n], k.errnos, strict=True) if m != h)
            if differ:
                yield (f"  outcome differs on {differ} calls at {n:,} VMAs ({build.build}): "
                       "model bug or host difference")
    same = all(m == h for b in builds for n, k in kernel.items()
               for m, h in zip(b.errnos[n], k.errnos, strict=True))
    if kernel and same:
        yield "  every call had the same outcome (result or errno) on the model and the kernel"
    spread, whose = widest_spread(builds, kernel)
    if spread > 1.0:
        yield (f"  trials: each side's least; the widest spread between trials is {spread:.2f}x "
               f"({whose})")


def worst_ratio(build: ModelPairs, kernel: KernelPairs) -> tuple[str, float]:
    ratios = {p: build.pairs[MID_N][p] / kernel.pairs[p] for p in PAIRS}
    pair = max(ratios, key=ratios.__getitem__)
    return pair, ratios[pair]


def pairs_targets(
    sizes: Sequence[int], builds: Sequence[ModelPairs], kernel: dict[int, KernelPairs],
) -> Iterator[str]:
    """The issue's targets, each marked met or MISSED, per build."""
    yield "Targets (simple pairs)"
    mid = kernel.get(MID_N)
    for build in builds:
        name = build.build
        limit = RATIO_TARGET.get(name)
        if mid is not None and MID_N in build.pairs and limit is not None:
            pair, ratio = worst_ratio(build, mid)
            yield (f"  [{_target(ratio <= limit)}] {name}: every pair within {limit:g}x of the "
                   f"kernel at {MID_N:,} VMAs: worst {ratio:.1f}x ({pair})")
        if SMALL_N in build.pairs and LARGE_N in build.pairs:
            scale = {p: build.pairs[LARGE_N][p] / build.pairs[SMALL_N][p] for p in PAIRS}
            pair = max(scale, key=scale.__getitem__)
            yield (f"  [{_target(scale[pair] <= SCALE_TARGET)}] {name}: {LARGE_N:,} VMAs within "
                   f"{SCALE_TARGET}x of {SMALL_N:,}: worst {scale[pair]:.2f}x ({pair})")
        memory_limit = MEMORY_TARGET.get(name)
        if build.bytes_per_vma is not None and memory_limit is not None:
            yield (f"  [{_target(build.bytes_per_vma <= memory_limit)}] {name}: at most "
                   f"{memory_limit:.0f} bytes per VMA (tracemalloc): {build.bytes_per_vma:.0f} B")
        if build.placed_build_s is not None:
            what = f"{name}: {build.placed_build_n:,} VMAs built by placed mmap"
            if name == "pure" and build.placed_build_n >= LARGE_N:
                ok = build.placed_build_s < PLACED_BUILD_TARGET_S
                yield (f"  [{_target(ok)}] {what} in under {PLACED_BUILD_TARGET_S:.0f} s: "
                       f"{build.placed_build_s:.1f} s")
            else:
                yield f"  {what}: {build.placed_build_s:.1f} s"
        if build.build_s:
            yield ("  " + name + ": built by fixed mmap in "
                   + ", ".join(f"{s:.1f} s ({n:,})" for n, s in build.build_s.items()))


if __name__ == "__main__":
    main(sys.argv)
