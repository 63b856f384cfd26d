"""``vmamodel bench``: the model's speed and size beside the host kernel's, on one sequence.

For each size N the benchmark builds an address space of N anonymous VMAs (two pages each,
two free pages between neighbours, so that no two merge and every free gap is too small for
a kernel-placed mapping of the sequence), then runs one reproducible sequence of calls on
the model and on the host kernel: fixed-address mmap and munmap, mprotect splits and
re-merges, touches (write and read faults), madvise splits, re-merges and DONTNEED, mremap
growth, shrinking and moves, and kernel-placed mmap(NULL, ...) with its munmap. Every call
is timed alone; the report gives the time per call for each kind of call and the
model/kernel ratio, with the machine and the Python version.

The model's region lies just below its mmap_base, so each placed mmap has to look past the
whole fragmented region (the gap index answers that in O(log n)). The kernel's region is in
the oracle arena; its placed mappings go below the runner's own mmap_base, where the maple
tree's gap search is O(log n) as well.

The kernel side runs in a child process: a small C program when a compiler is present
(timing with clock_gettime), and always ctypes in a child Python; the overhead of each
(measured around a call that does no kernel work) is reported. The host's max_map_count
caps the kernel's N; the model's limit is raised to fit N.

Not a test: nothing here asserts; the figures are for reading (and for the README).
"""

from __future__ import annotations

import gc
import importlib.util
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import tracemalloc
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmamodel.buildinfo import build_name, describe
from vmamodel.constants import (
    MADV_DOFORK,
    MADV_DONTFORK,
    MADV_DONTNEED,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_PRIVATE,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
)
from vmamodel.events import Tracer
from vmamodel.host import bench_kernel
from vmamodel.host.arena import ARENA_BASE
from vmamodel.host.bench_kernel import (
    OP_MADVISE,
    OP_MMAP_FIXED,
    OP_MMAP_PLACED,
    OP_MPROTECT,
    OP_MREMAP,
    OP_MUNMAP,
    OP_MUNMAP_REG,
    OP_TOUCH,
    RESULT_HEADER,
    compile_runner,
)
from vmamodel.host.traits import host_model_kwargs
from vmamodel.inject import Injector
from vmamodel.mm import AddressSpace
from vmamodel.mm_types import InjectorCore, TracerCore

P = PAGE_SIZE
RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS
SLOT = 4 * P  # one VMA of VMA_BYTES, then a free gap of the same size
VMA_BYTES = 2 * P
PLACED_LENGTHS = (8 * P, 16 * P, 512 * P)  # all longer than any gap in the region
KERNEL_BASE = ARENA_BASE
KERNEL_HEADROOM = 1000  # VMAs left to the runner's own mappings and the sequence's splits
DEFAULT_SIZES = (1_000, 65_530, 1_000_000)
DEFAULT_ROUNDS = 2_000
DEFAULT_MEMORY_N = 65_530

KINDS = ("mmap fixed", "mmap placed", "munmap", "mprotect", "mremap", "touch", "madvise")
KIND_OF_OP = {
    OP_MMAP_FIXED: "mmap fixed",
    OP_MMAP_PLACED: "mmap placed",
    OP_MUNMAP: "munmap",
    OP_MUNMAP_REG: "munmap",
    OP_MPROTECT: "mprotect",
    OP_MREMAP: "mremap",
    OP_TOUCH: "touch",
    OP_MADVISE: "madvise",
}


# -- the sequence ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CallSequence:
    """Ops as a flat int64 array (op, a, b, c, d, e)*; addresses are region offsets."""

    ops: array[int]
    rounds: int
    seed: int
    slots: int
    skipped: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ops) // 6

    def kinds(self) -> list[str]:
        return [KIND_OF_OP[self.ops[6 * k]] for k in range(len(self))]


def make_sequence(
    slots: int, rounds: int, seed: int, skipped: Sequence[str] = ()
) -> CallSequence:
    """``rounds`` rounds, each on a slot chosen at random: the calls listed in the module
    docstring, which leave the layout of the region as they found it."""
    rng = random.Random(seed)
    ops = array("q")

    def add(op: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0, e: int = 0) -> None:
        ops.extend((op, a, b, c, d, e))

    previous: tuple[int, int] | None = None
    for n in range(rounds):
        s = SLOT * rng.randrange(slots)
        t = SLOT * rng.randrange(slots)
        add(OP_MMAP_FIXED, s + 2 * P, P, RW, ANON | MAP_FIXED)
        add(OP_MUNMAP, s + 2 * P, P)
        add(OP_MPROTECT, s + P, P, PROT_READ)
        add(OP_MPROTECT, s + P, P, RW)
        add(OP_TOUCH, s, 1)
        add(OP_TOUCH, s + P, 0)
        if "madvise" not in skipped:
            add(OP_MADVISE, s, P, MADV_DONTFORK)
            add(OP_MADVISE, s, P, MADV_DOFORK)
            add(OP_MADVISE, s, VMA_BYTES, MADV_DONTNEED)
        if "mremap" not in skipped:
            add(OP_MREMAP, s, VMA_BYTES, VMA_BYTES + P)
            add(OP_MREMAP, s, VMA_BYTES + P, VMA_BYTES)
            if t != s:
                add(OP_MREMAP, s, VMA_BYTES, VMA_BYTES, MREMAP_MAYMOVE | MREMAP_FIXED, t + 2 * P)
                add(OP_MREMAP, t + 2 * P, VMA_BYTES, VMA_BYTES, MREMAP_MAYMOVE | MREMAP_FIXED, s)
        length = rng.choice(PLACED_LENGTHS)
        add(OP_MMAP_PLACED, n % 2, length, RW, ANON)
        if previous is not None:
            add(OP_MUNMAP_REG, *previous)
        previous = (n % 2, length)
    if previous is not None:
        add(OP_MUNMAP_REG, *previous)
    return CallSequence(ops, rounds, seed, slots, tuple(skipped))


def unsupported_kinds() -> tuple[str, ...]:
    """Call kinds whose model module has not landed yet (they are left out of the run)."""
    missing = []
    for kind, module in (("mremap", "vmamodel.mremap"), ("madvise", "vmamodel.madvise")):
        if importlib.util.find_spec(module) is None:
            missing.append(kind)
    return tuple(missing)


# -- the model side -------------------------------------------------------------------------


@dataclass
class Timings:
    """Per-call nanoseconds and errnos of one run, and what it cost to build the space."""

    n: int
    build_s: float
    ns: array[int]
    errnos: array[int]
    extra: dict[str, Any] = field(default_factory=dict)

    def by_kind(self, kinds: list[str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for kind, ns in zip(kinds, self.ns, strict=True):
            out.setdefault(kind, []).append(ns)
        return out


def model_space(n: int) -> Any:
    """A model configured like this host (PKU, overcommit), with room for n VMAs."""

    kwargs = dict(host_model_kwargs())
    kwargs["max_map_count"] = max(kwargs.get("max_map_count", 0), n + KERNEL_HEADROOM)
    return AddressSpace(**kwargs)


def build_model(n: int, slot: int = SLOT, vma_bytes: int = VMA_BYTES) -> tuple[Any, int, float]:
    """(address space, region base, seconds to build n VMAs of ``vma_bytes``, one every
    ``slot`` bytes, with n fixed mmaps)."""
    mm = model_space(n)
    base = mm.mmap_base - n * slot
    mmap = mm.mmap
    t0 = time.perf_counter()
    for i in range(n):
        mmap(base + i * slot, vma_bytes, RW, ANON | MAP_FIXED)
    return mm, base, time.perf_counter() - t0


def run_model_ops(mm: Any, base: int, seq: CallSequence) -> tuple[array[int], array[int]]:
    """Run the sequence on the model; each call timed alone with perf_counter_ns."""
    ops, nops = seq.ops, len(seq)
    ns, errnos = array("q", bytes(8 * nops)), array("q", bytes(8 * nops))
    regs = [0] * 64
    clock = time.perf_counter_ns
    mmap, munmap, mprotect, touch = mm.mmap, mm.munmap, mm.mprotect, mm.touch
    mremap, madvise = mm.mremap, mm.madvise
    for k in range(nops):
        op, a, b, c, d, e = ops[6 * k:6 * k + 6]
        t0 = clock()
        try:
            if op == OP_MMAP_FIXED:
                t0 = clock()
                mmap(base + a, b, c, d)
            elif op == OP_MMAP_PLACED:
                t0 = clock()
                regs[a] = mmap(0, b, c, d)
            elif op == OP_MUNMAP:
                t0 = clock()
                munmap(base + a, b)
            elif op == OP_MUNMAP_REG:
                t0 = clock()
                munmap(regs[a], b)
            elif op == OP_MPROTECT:
                t0 = clock()
                mprotect(base + a, b, c)
            elif op == OP_MREMAP:
                new = base + e if d & MREMAP_FIXED else 0
                t0 = clock()
                mremap(base + a, b, c, d, new)
            elif op == OP_TOUCH:
                t0 = clock()
                touch(base + a, bool(b))
            else:
                t0 = clock()
                madvise(base + a, b, c)
            t1 = clock()
        except OSError as exc:
            t1 = clock()
            errnos[k] = exc.errno or -1
        ns[k] = t1 - t0
    return ns, errnos


def run_model(n: int, seq: CallSequence, repeats: int) -> Timings:
    """Build n VMAs, run the sequence ``repeats`` times (it leaves the layout as it found
    it) and keep each call's least time, as timeit keeps the least of its repeats, so that
    a call the scheduler interrupted does not count; the errnos are the first pass's."""
    mm, base, build_s = build_model(n)
    ns, errnos = run_model_ops(mm, base, seq)
    for _ in range(repeats - 1):
        again, _ = run_model_ops(mm, base, seq)
        ns = array("q", map(min, ns, again))
    return Timings(n, build_s, ns, errnos, {"map_count": mm.map_count})


# -- the kernel side ------------------------------------------------------------------------


def kernel_cap() -> int:
    """How many VMAs the kernel runner may build: max_map_count less the headroom."""
    try:
        limit = int(Path("/proc/sys/vm/max_map_count").read_text())
    except (OSError, ValueError):
        limit = 65_530
    return max(0, limit - KERNEL_HEADROOM)


def _encode(n: int, seq: CallSequence, repeats: int, slot: int, vma_bytes: int) -> bytes:
    header = array("q", (KERNEL_BASE, n, slot, vma_bytes, len(seq), repeats))
    return header.tobytes() + seq.ops.tobytes()


def run_kernel(
    command: list[str], n: int, seq: CallSequence, repeats: int, workdir: Path,
    slot: int = SLOT, vma_bytes: int = VMA_BYTES,
) -> Timings:
    """Run the sequence on the host kernel with ``command IN OUT`` (the C runner or the
    ctypes one); the child builds the region (n VMAs of ``vma_bytes``, one every ``slot``)
    itself and keeps its fastest pass."""
    inp, out = workdir / "seq.bin", workdir / "result.bin"
    inp.write_bytes(_encode(n, seq, repeats, slot, vma_bytes))
    out.unlink(missing_ok=True)
    proc = subprocess.run([*command, str(inp), str(out)], capture_output=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(
            f"kernel runner {command[-1]} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}"
        )
    data = array("q")
    data.frombytes(out.read_bytes())
    build_ns, call_over, touch_over, maps_before, maps_after = data[:RESULT_HEADER]
    body = data[RESULT_HEADER:]
    extra = {"call_overhead_ns": call_over, "touch_overhead_ns": touch_over,
             "maps_before": maps_before, "maps_after": maps_after}
    return Timings(n, build_ns / 1e9, body[0::2], body[1::2], extra)


def kernel_runners(workdir: Path, use_c: bool) -> dict[str, list[str]]:
    """The ways to call the kernel available here: "C" (if it compiles) and "ctypes"."""
    runners: dict[str, list[str]] = {}
    if use_c:
        binary = compile_runner(workdir)
        if binary is not None:
            runners["C"] = [str(binary)]
    child = Path(bench_kernel.__file__)
    runners["ctypes"] = [sys.executable, "-I", "-S", str(child)]
    return runners


# -- memory, tracing and fault injection ----------------------------------------------------


def bytes_per_vma(n: int) -> float:
    """tracemalloc: what the address space grows by while n VMAs are built, per VMA."""
    mm = model_space(n)
    base = mm.mmap_base - n * SLOT
    # One call first, so that the modules the call path imports are not counted.
    mm.munmap(mm.mmap(base, VMA_BYTES, RW, ANON | MAP_FIXED), VMA_BYTES)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            mm.mmap(base + i * SLOT, VMA_BYTES, RW, ANON | MAP_FIXED)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / n


class _CountingTracer(Tracer):
    """Stands in for mm.tracer: never active, and counts how often that is asked."""

    __slots__ = ("reads",)

    def __init__(self) -> None:
        self.reads = 0
        super().__init__()
        # The property below hides TracerCore's field from Python code, not from compiled
        # code, which reads the field itself: give it its value through its own descriptor.
        vars(TracerCore)["active"].__set__(self, False)

    @property
    def active(self) -> bool:
        self.reads += 1
        return False

    @active.setter
    def active(self, value: bool) -> None:
        pass


class _CountingInjector(Injector):
    """Stands in for mm.injector: never armed, and counts how often that is asked."""

    __slots__ = ("reads",)

    def __init__(self) -> None:
        self.reads = 0
        super().__init__()
        vars(InjectorCore)["armed"].__set__(self, False)  # as in _CountingTracer

    @property
    def armed(self) -> bool:
        self.reads += 1
        return False

    @armed.setter
    def armed(self, value: bool) -> None:
        pass


def guard_cost(mm: Any, base: int, seq: CallSequence) -> dict[str, float]:
    """The cost of the event trace and fault injection while unused: how many
    ``if mm.tracer.active`` / ``if mm.injector.armed`` tests a call makes, times what one
    costs; and, for scale, the time per call with a no-op subscriber listening. In the
    compiled build the compiled modules read those switches as native fields, which no
    property sees: only the tests made by interpreted code are counted there."""

    baseline, _ = run_model_ops(mm, base, seq)
    tracer, injector = mm.tracer, mm.injector
    counting_tracer, counting_injector = _CountingTracer(), _CountingInjector()
    mm.tracer, mm.injector = counting_tracer, counting_injector
    try:
        run_model_ops(mm, base, seq)
    finally:
        mm.tracer, mm.injector = tracer, injector
    tests = (counting_tracer.reads + counting_injector.reads) / len(seq)
    per_test = min(timeit.repeat("mm.tracer.active", globals={"mm": mm}, number=100_000,
                                 repeat=5)) / 100_000 * 1e9
    unsubscribe = mm.tracer.subscribe(lambda event: None)
    try:
        traced, _ = run_model_ops(mm, base, seq)
    finally:
        unsubscribe()
    call_ns = sum(baseline) / len(baseline)
    return {
        "tests_per_call": tests,
        "ns_per_test": per_test,
        "unused_ns_per_call": tests * per_test,
        "call_ns": call_ns,
        "traced_call_ns": sum(traced) / len(traced),
    }


# -- the report -----------------------------------------------------------------------------


@dataclass
class SizeResult:
    n: int
    kinds: list[str]
    model: Timings
    kernel: dict[str, Timings]
    mismatches: list[tuple[int, str, int, int]]


def _mean_us(values: Sequence[int]) -> float:
    return sum(values) / len(values) / 1000 if values else float("nan")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, "
            f"{os.cpu_count()} CPUs, load {load:.1f}")


def _python() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}; {describe()}"


def compare_errnos(
    kinds: list[str], model: Timings, kernel: Timings
) -> list[tuple[int, str, int, int]]:
    """Calls whose outcome (errno, 0 for success) differs between the model and the kernel."""
    return [
        (k, kind, m, h)
        for k, (kind, m, h) in enumerate(zip(kinds, model.errnos, kernel.errnos, strict=True))
        if m != h
    ]


def size_table(result: SizeResult) -> Iterator[str]:
    kernel_names = list(result.kernel)
    ref_name = kernel_names[0] if kernel_names else None
    model_kinds = result.model.by_kind(result.kinds)
    kernel_kinds = {name: t.by_kind(result.kinds) for name, t in result.kernel.items()}
    kernel_n = next(iter(result.kernel.values())).n if result.kernel else 0
    title = f"N = {result.n:,} VMAs on the model"
    title += (f", {kernel_n:,} on the kernel" if result.kernel
              else " (model only: past the host's max_map_count, or --no-kernel)")
    yield title
    cols = "".join(f"{'kernel ' + name + ' us':>18}" for name in kernel_names)
    ratio = f"{'model/kernel':>14}" if kernel_names else ""
    yield f"  {'call':<12}{'count':>7}{'model us':>11}{'median':>9}{cols}{ratio}"
    rows = [kind for kind in KINDS if kind in model_kinds] + ["all"]
    for kind in rows:
        values = result.model.ns if kind == "all" else model_kinds[kind]
        line = (f"  {kind:<12}{len(values):>7}{_mean_us(values):>11.1f}"
                f"{statistics.median(values) / 1000:>9.1f}")
        for name in kernel_names:
            kv = result.kernel[name].ns if kind == "all" else kernel_kinds[name][kind]
            line += f"{_mean_us(kv):>18.2f}"
        if ref_name is not None:
            kv = result.kernel[ref_name].ns if kind == "all" else kernel_kinds[ref_name][kind]
            line += f"{_mean_us(values) / _mean_us(kv):>13.1f}x"
        yield line
    build = f"  build: model {result.model.build_s:.2f} s ({result.n:,} fixed mmaps)"
    for name, t in result.kernel.items():
        build += f", kernel/{name} {t.build_s:.3f} s"
    yield build
    if result.mismatches:
        yield (f"  outcome differs on {len(result.mismatches)} of {len(result.kinds)} calls "
               "(model bug or host difference), first: "
               + ", ".join(f"#{k} {kind} model {m} kernel {h}"
                           for k, kind, m, h in result.mismatches[:3]))
    elif result.kernel:
        yield "  every call had the same outcome (result or errno) on the model and the kernel"


@dataclass
class Options:
    sizes: tuple[int, ...] = DEFAULT_SIZES
    rounds: int = DEFAULT_ROUNDS
    seed: int = 1
    kernel: bool = True
    use_c: bool = True
    memory_n: int = DEFAULT_MEMORY_N
    guards: bool = True
    repeats: int = 3
    pairs: bool = True
    pair_rounds: int = 2_000
    #: The interpreter of another build (pure beside compiled, or the reverse), or None.
    other_python: str | None = None
    #: VMAs to build by kernel-placed mmap (0: skip).
    placed_n: int = 1_000_000
    #: Trials of the simple pairs: the kernel and each build in turn, each side's least.
    trials: int = 3


@dataclass
class PairsResult:
    """The simple pairs: the sizes, each build's model figures, the kernel's per size."""

    sizes: tuple[int, ...]
    builds: list[Any]
    kernel: dict[int, Any]


def run(options: Options, say: Callable[[str], None]) -> list[str]:
    """Run everything; ``say`` gets progress lines; returns the report lines."""
    started = time.perf_counter()
    skipped = unsupported_kinds()
    cap = kernel_cap() if options.kernel else 0
    results: list[SizeResult] = []
    notes: list[str] = []
    pairs: PairsResult | None = None
    with tempfile.TemporaryDirectory(prefix="vmamodel-bench-") as tmp:
        workdir = Path(tmp)
        runners = kernel_runners(workdir, options.use_c) if options.kernel else {}
        if options.pairs:
            pairs = run_pairs(options, cap, runners, workdir, say, notes)
        for n in options.sizes:
            # Up to the host's max_map_count (less the runner's own needs); above it the
            # kernel cannot hold the space, and the model runs alone over all n slots.
            kernel_n = min(n, cap) if n <= cap + KERNEL_HEADROOM else 0
            # Slots the kernel has too, so that both run the very same calls.
            seq = make_sequence(kernel_n or n, options.rounds, options.seed, skipped)
            kinds = seq.kinds()
            say(f"model: building {n:,} VMAs and running {len(seq):,} calls")
            model = run_model(n, seq, options.repeats)
            gc.collect()
            kernel: dict[str, Timings] = {}
            if kernel_n >= 1:
                for name, command in runners.items():
                    say(f"kernel ({name}): building {kernel_n:,} VMAs and running the same calls")
                    try:
                        kernel[name] = run_kernel(command, kernel_n, seq, options.repeats,
                                                  workdir)
                    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                        notes.append(f"kernel runner {name} failed at N={n:,}: {exc}")
            ref = next(iter(kernel.values()), None)
            mismatches = compare_errnos(kinds, model, ref) if ref is not None else []
            results.append(SizeResult(n, kinds, model, kernel, mismatches))
        memory = None
        if options.memory_n:
            say(f"memory: tracemalloc while building {options.memory_n:,} VMAs")
            memory = bytes_per_vma(options.memory_n)
        guards = None
        if options.guards:
            n = min(max(options.sizes), DEFAULT_MEMORY_N)
            say(f"trace and injection guards at N={n:,}")
            mm, base, _ = build_model(n)
            guards = guard_cost(mm, base, make_sequence(n, options.rounds, options.seed, skipped))
    return report(options, results, memory, guards, skipped, runners_overhead(results),
                  notes, time.perf_counter() - started, pairs)


def run_pairs(
    options: Options, cap: int, runners: dict[str, list[str]], workdir: Path,
    say: Callable[[str], None], notes: list[str],
) -> PairsResult:
    """The simple pairs (vmamodel.bench.pairs) on the kernel (the first runner), on this
    build and, with ``options.other_python``, on the other build."""
    # pairs builds on this module's helpers: imported here to break that cycle.
    from vmamodel.bench import pairs as bp

    kernel_ns = {n: min(n, cap) for n in options.sizes if 1 <= n <= cap + KERNEL_HEADROOM}
    runner = next(iter(runners.items()), None)
    kernel_trials: dict[int, list[Any]] = {}
    build_trials: dict[str, list[Any]] = {}
    for trial in range(options.trials):
        # memory and the placed build are measured once, in the first trial
        memory_n, placed_n = (options.memory_n, options.placed_n) if trial == 0 else (0, 0)
        say(f"pairs, trial {trial + 1} of {options.trials}")
        if runner is not None:
            name, command = runner
            for n, kn in kernel_ns.items():
                if trial and n not in kernel_trials:
                    continue  # the runner failed at this size in the first trial
                say(f"pairs, kernel ({name}): building {kn:,} one-page VMAs")
                try:
                    kernel_trials.setdefault(n, []).append(bp.run_kernel_pairs(
                        command, name, kn, options.pair_rounds, options.seed,
                        options.repeats, workdir))
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    notes.append(f"pairs: kernel runner {name} failed at N={n:,}: {exc}")
                    kernel_trials.pop(n, None)
        measured = {n: kn for n, kn in kernel_ns.items() if n in kernel_trials}
        say(f"pairs, model ({build_name()}): sizes {', '.join(map(str, options.sizes))}"
            + (f", then {placed_n:,} placed mmaps" if placed_n else ""))
        build_trials.setdefault("", []).append(bp.run_model_pairs(
            options.sizes, options.pair_rounds, options.seed, options.repeats, measured,
            memory_n, placed_n))
        if options.other_python and (trial == 0 or "other" in build_trials):
            say(f"pairs, model in {options.other_python}")
            try:
                build_trials.setdefault("other", []).append(bp.run_other_build(
                    options.other_python, options.sizes, options.pair_rounds, options.seed,
                    options.repeats, measured, memory_n, placed_n, workdir))
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
                notes.append(f"pairs: the other build failed: {exc}")
                build_trials.pop("other", None)
    kernel = {n: bp.least_kernel(t) for n, t in kernel_trials.items()}
    builds = [bp.least_model(t) for t in build_trials.values()]
    builds.sort(key=lambda b: b.build != "pure")
    return PairsResult(options.sizes, builds, kernel)


def pairs_lines(pairs: PairsResult) -> list[str]:
    """The per-pair table and its targets; how to add the missing build."""
    from vmamodel.bench import pairs as bp  # see run_pairs

    lines = list(bp.pairs_table(pairs.sizes, pairs.builds, pairs.kernel))
    lines.append("")
    lines.extend(bp.pairs_targets(pairs.sizes, pairs.builds, pairs.kernel))
    have = {b.build for b in pairs.builds}
    if "compiled" not in have:
        lines.append("  compiled build not measured: `python -m venv .venv-mypyc && "
                     ".venv-mypyc/bin/pip install .`, then `vmamodel bench --other-build "
                     ".venv-mypyc/bin/python`")
    elif "pure" not in have:
        lines.append("  pure build not measured: `vmamodel bench --other-build PYTHON` with the "
                     "python of an editable (pure) install")
    return lines


def runners_overhead(results: list[SizeResult]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for result in results:
        for name, t in result.kernel.items():
            out[name] = (t.extra["call_overhead_ns"], t.extra["touch_overhead_ns"])
    return out


def report(
    options: Options,
    results: list[SizeResult],
    memory: float | None,
    guards: dict[str, float] | None,
    skipped: tuple[str, ...],
    overheads: dict[str, tuple[int, int]],
    notes: list[str],
    elapsed: float,
    pairs: PairsResult | None = None,
) -> list[str]:
    lines = [
        "vmamodel bench",
        f"  machine: {_machine()}",
        f"  python:  {_python()}",
        f"  sequence: {options.rounds:,} rounds, seed {options.seed}, run {options.repeats} "
        "times on each side; each call's least time counts; times are means over the calls "
        "of a kind (the model's median beside)",
    ]
    if skipped:
        lines.append(f"  left out (the model has no module for them yet): {', '.join(skipped)}")
    for name, (call_ns, touch_ns) in overheads.items():
        what = ("clock_gettime pair" if name == "C"
                else "ctypes call of a no-op libc function + perf_counter_ns pair")
        lines.append(f"  kernel/{name} overhead per call (included in its times): {call_ns} ns "
                     f"({what}); per touch {touch_ns} ns")
    if overheads:
        lines.append(f"  model/kernel uses kernel/{next(iter(overheads))}")
    if pairs is not None:
        lines.append("")
        lines.extend(pairs_lines(pairs))
        lines.append("")
        lines.append("The mix (every kind of call, one sequence)")
    for result in results:
        lines.append("")
        lines.extend(size_table(result))
    lines.append("")
    lines.extend(targets(results, memory, guards))
    lines.extend(f"  note: {note}" for note in notes)
    lines.append(f"  (bench took {elapsed:.0f} s)")
    return lines


def targets(
    results: list[SizeResult], memory: float | None, guards: dict[str, float] | None
) -> Iterator[str]:
    yield "Targets (the mix)"
    by_n = {r.n: r for r in results}
    mid = by_n.get(65_530)
    if mid is not None and mid.kernel:
        name, kernel = next(iter(mid.kernel.items()))
        ratio = _mean_us(mid.model.ns) / _mean_us(kernel.ns)
        yield _target(f"model within 3x of the kernel ({name}) per call at 65,530 VMAs",
                      f"{ratio:.1f}x", ratio <= 3)
    small, large = by_n.get(1_000), by_n.get(1_000_000)
    if small is not None and large is not None:
        ratio = _mean_us(large.model.ns) / _mean_us(small.model.ns)
        yield _target("per call at 1,000,000 VMAs within 1.5x of 1,000",
                      f"{ratio:.2f}x", ratio <= 1.5)
        kinds_small = small.model.by_kind(small.kinds).get("mmap placed", [])
        kinds_large = large.model.by_kind(large.kinds).get("mmap placed", [])
        if kinds_small and kinds_large:
            placed = _mean_us(kinds_large) / _mean_us(kinds_small)
            yield _target("kernel-placed mmap on a fragmented space: 1,000,000 vs 1,000 VMAs",
                          f"{_mean_us(kinds_small):.1f} -> {_mean_us(kinds_large):.1f} us "
                          f"({placed:.2f}x)", placed <= 1.5)
        yield f"  build of 1,000,000 VMAs: {large.model.build_s:.1f} s"
    if memory is not None:
        yield _target("bytes per VMA (tracemalloc) at most 300", f"{memory:.0f} B", memory <= 300)
    if guards is not None:
        share = guards["unused_ns_per_call"] / guards["call_ns"]
        yield _target(
            "trace and fault injection cost nothing measurable when unused",
            f"{guards['tests_per_call']:.1f} guard tests per call x "
            f"{guards['ns_per_test']:.0f} ns = {guards['unused_ns_per_call']:.0f} ns "
            f"({share:.1%} of {guards['call_ns'] / 1000:.1f} us); with a no-op subscriber "
            f"{guards['traced_call_ns'] / 1000:.1f} us", share < 0.02)


def _target(what: str, value: str, ok: bool) -> str:
    return f"  [{'met' if ok else 'MISSED'}] {what}: {value}"

