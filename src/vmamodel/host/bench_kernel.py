"""The kernel side of ``vmamodel bench``: one sequence of VMA calls, timed call by call.

Standard library only and no vmamodel imports: ``bench.py`` starts this file as
``python -I -S bench_kernel.py IN OUT`` so that the process that builds tens of thousands of
VMAs holds few mappings of its own. The same job can be done by a small C program
(:data:`C_SOURCE_PATH`, compiled by :func:`compile_runner` when a C compiler is present), which
measures the kernel without the cost of ctypes.

Both read IN, a little-endian int64 array::

    base, slots, slot_bytes, vma_bytes, nops, repeats, then nops x (op, a, b, c, d, e)

build ``slots`` anonymous read-write mappings of ``vma_bytes`` every ``slot_bytes`` from
``base`` (timed as a whole), then run the ops ``repeats`` times (each call timed alone) and
write OUT, an int64 array, with each call's least time over the passes (and the errnos of
the first pass)::

    build_ns, call_overhead_ns, touch_overhead_ns, maps_before, maps_after,
    then nops x (ns, errno)

Addresses in ops are offsets from ``base`` (mremap's new address only with MREMAP_FIXED,
else 0); a placed mmap stores its result in register
``a`` and MUNMAP_REG unmaps register ``a``. ``call_overhead_ns`` and ``touch_overhead_ns``
are what the timer and the call machinery cost around a call that does no kernel work.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import Any

OP_MMAP_FIXED = 0
OP_MMAP_PLACED = 1
OP_MUNMAP = 2
OP_MUNMAP_REG = 3
OP_MPROTECT = 4
OP_MREMAP = 5
OP_TOUCH = 6
OP_MADVISE = 7
REGISTERS = 64
HEADER = 6
RESULT_HEADER = 5

SYS_MMAP = 9
SYS_MPROTECT = 10
SYS_MUNMAP = 11
SYS_MREMAP = 25
SYS_MADVISE = 28
PROT_RW = 3
MREMAP_FIXED = 2
MAP_PRIVATE_ANON_FIXED = 0x02 | 0x20 | 0x10
U64 = (1 << 64) - 1

#: The runner's C source, shipped beside this module (like runner.c for placement).
C_SOURCE_PATH = Path(__file__).with_name("bench_runner.c")


def compile_runner(directory: Path) -> Path | None:
    """Compile :data:`C_SOURCE_PATH` with the system compiler into ``directory``; None when
    there is no compiler or it fails."""
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        return None
    source = directory / "bench_runner.c"
    binary = directory / "bench_runner"
    source.write_text(C_SOURCE_PATH.read_text())
    try:
        subprocess.run(
            [compiler, "-O2", "-o", str(binary), str(source)],
            check=True, capture_output=True, timeout=120,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return binary


def _count_maps() -> int:
    with open("/proc/self/maps", "rb") as f:
        return f.read().count(b"\n")


def run_ctypes(data: array[int]) -> array[int]:
    """The ctypes runner: the same job as the C program, from Python."""
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    syscall.argtypes = (ctypes.c_long,) + (ctypes.c_ulong,) * 6
    # A libc function that returns at once, called with the same argument conversions: what
    # ctypes and the timer cost around a syscall.
    noop = libc.labs
    noop.restype = ctypes.c_long
    noop.argtypes = syscall.argtypes
    get_errno, clock = ctypes.get_errno, time.perf_counter_ns
    base, slots, slot_bytes, vma_bytes, nops, repeats = data[:HEADER]
    out = array("q", bytes(8 * (RESULT_HEADER + 2 * nops)))
    regs = [0] * REGISTERS
    scratch = ctypes.create_string_buffer(4096)
    scratch_addr = ctypes.addressof(scratch)

    def best(fn: object, *args: int) -> int:
        least = 1 << 62
        for _ in range(2000):
            t0 = clock()
            fn(*args)  # type: ignore[operator]
            t1 = clock()
            least = min(least, t1 - t0)
        return least

    out[1] = best(noop, 0, 0, 0, 0, 0, 0, 0)
    out[2] = best(ctypes.memset, scratch_addr, 0, 1)
    out[3] = _count_maps()
    t0 = clock()
    for i in range(slots):
        if syscall(SYS_MMAP, base + i * slot_bytes, vma_bytes, PROT_RW,
                   MAP_PRIVATE_ANON_FIXED, U64, 0) == -1:
            raise OSError(get_errno(), "building the slots")
    out[0] = clock() - t0
    for rep in range(repeats):
        res = run_pass(syscall, data, base, regs)
        if rep == 0:
            out[RESULT_HEADER:] = res
        else:
            out[RESULT_HEADER::2] = array("q", map(min, out[RESULT_HEADER::2], res[0::2]))
    out[4] = _count_maps()
    return out


def run_pass(syscall: Any, data: array[int], base: int, regs: list[int]) -> array[int]:
    """One pass over the ops: (ns, errno) pairs."""
    memset, string_at = ctypes.memset, ctypes.string_at
    get_errno, clock = ctypes.get_errno, time.perf_counter_ns
    nops = data[4]
    res = array("q", bytes(16 * nops))
    k = HEADER
    for slot in range(0, 2 * nops, 2):
        op, a, b, c, d, e = data[k:k + 6]
        k += 6
        if op == OP_MMAP_FIXED:
            t0 = clock()
            r = syscall(SYS_MMAP, base + a, b, c, d, U64, 0)
            t1 = clock()
        elif op == OP_MMAP_PLACED:
            t0 = clock()
            r = syscall(SYS_MMAP, 0, b, c, d, U64, 0)
            t1 = clock()
            if r != -1:
                regs[a] = r
        elif op == OP_MUNMAP:
            t0 = clock()
            r = syscall(SYS_MUNMAP, base + a, b, 0, 0, 0, 0)
            t1 = clock()
        elif op == OP_MUNMAP_REG:
            t0 = clock()
            r = syscall(SYS_MUNMAP, regs[a], b, 0, 0, 0, 0)
            t1 = clock()
        elif op == OP_MPROTECT:
            t0 = clock()
            r = syscall(SYS_MPROTECT, base + a, b, c, 0, 0, 0)
            t1 = clock()
        elif op == OP_MREMAP:
            t0 = clock()
            r = syscall(SYS_MREMAP, base + a, b, c, d, base + e if d & MREMAP_FIXED else 0, 0)
            t1 = clock()
        elif op == OP_TOUCH:
            t0 = clock()
            if b:
                memset(base + a, 0, 1)
            else:
                string_at(base + a, 1)
            t1 = clock()
            r = 0
        elif op == OP_MADVISE:
            t0 = clock()
            r = syscall(SYS_MADVISE, base + a, b, c, 0, 0, 0)
            t1 = clock()
        else:
            raise ValueError(f"unknown op {op}")
        res[slot] = t1 - t0
        res[slot + 1] = get_errno() if r == -1 else 0
    return res


def main(argv: list[str]) -> None:
    data = array("q")
    data.frombytes(Path(argv[1]).read_bytes())
    Path(argv[2]).write_bytes(run_ctypes(data).tobytes())


if __name__ == "__main__":
    main(sys.argv)
