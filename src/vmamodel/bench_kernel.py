"""The kernel side of ``vmamodel bench``: one sequence of VMA calls, timed call by call.

Standard library only and no vmamodel imports: ``bench.py`` starts this file as
``python -I -S bench_kernel.py IN OUT`` so that the process that builds tens of thousands of
VMAs holds few mappings of its own. The same job can be done by a small C program
(:data:`C_SOURCE`, compiled by :func:`compile_runner` when a C compiler is present), which
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

C_SOURCE = r"""
/* vmamodel bench runner: build the slots, run the ops, time each with CLOCK_MONOTONIC. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static sigjmp_buf fault_jump;
static void on_fault(int sig) { siglongjmp(fault_jump, sig); }

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t count_maps(void)
{
    static char buf[1 << 16];
    FILE *f = fopen("/proc/self/maps", "r");
    int64_t lines = 0;
    size_t n;
    if (!f)
        return -1;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        for (size_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    fclose(f);
    return lines;
}

static int64_t *slurp(const char *path, size_t *count)
{
    FILE *f = fopen(path, "rb");
    long size;
    int64_t *data;
    if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        exit(2);
    data = malloc(size ? size : 1);
    if (!data || fread(data, 1, size, f) != (size_t)size)
        exit(2);
    fclose(f);
    *count = size / 8;
    return data;
}

static long call(long nr, long a, long b, long c, long d, long e, long f)
{
    return syscall(nr, a, b, c, d, e, f);
}

/* One pass over the ops: (ns, errno) pairs into res. */
static void run_ops(const int64_t *ops, int64_t nops, int64_t base, int64_t *res)
{
    static int64_t regs[64];
    int64_t t0 = 0, t1 = 0;
    for (int64_t k = 0; k < nops; k++) {
        const int64_t *op = ops + 6 * k;
        int64_t a = op[1], b = op[2], c = op[3], d = op[4], e = op[5];
        volatile char *touch;
        long r = 0;
        switch (op[0]) {
        case 0:
            t0 = now_ns();
            r = call(SYS_mmap, base + a, b, c, d, -1, 0);
            t1 = now_ns();
            break;
        case 1:
            t0 = now_ns();
            r = call(SYS_mmap, 0, b, c, d, -1, 0);
            t1 = now_ns();
            if (r != -1)
                regs[a] = r;
            break;
        case 2:
            t0 = now_ns();
            r = call(SYS_munmap, base + a, b, 0, 0, 0, 0);
            t1 = now_ns();
            break;
        case 3:
            t0 = now_ns();
            r = call(SYS_munmap, regs[a], b, 0, 0, 0, 0);
            t1 = now_ns();
            break;
        case 4:
            t0 = now_ns();
            r = call(SYS_mprotect, base + a, b, c, 0, 0, 0);
            t1 = now_ns();
            break;
        case 5:
            t0 = now_ns();
            r = call(SYS_mremap, base + a, b, c, d, d & MREMAP_FIXED ? base + e : 0, 0);
            t1 = now_ns();
            break;
        case 6:
            touch = (volatile char *)(base + a);
            if (sigsetjmp(fault_jump, 1)) {
                t1 = now_ns();
                r = -1;
                errno = EFAULT;
                break;
            }
            t0 = now_ns();
            if (b)
                *touch = 0;
            else
                (void)*touch;
            t1 = now_ns();
            break;
        case 7:
            t0 = now_ns();
            r = call(SYS_madvise, base + a, b, c, 0, 0, 0);
            t1 = now_ns();
            break;
        default:
            exit(4);
        }
        res[2 * k] = t1 - t0;
        res[2 * k + 1] = r == -1 ? errno : 0;
    }
}

int main(int argc, char **argv)
{
    size_t count;
    int64_t *in, *out, *res;
    int64_t base, slots, slot_bytes, vma_bytes, nops, repeats, t0, t1, best = INT64_MAX;
    struct sigaction sa;

    if (argc != 3)
        return 2;
    in = slurp(argv[1], &count);
    base = in[0], slots = in[1], slot_bytes = in[2], vma_bytes = in[3], nops = in[4];
    repeats = in[5];
    out = calloc(5 + 2 * nops, sizeof(*out));
    res = calloc(2 * nops + 1, sizeof(*res));
    if (!out || !res || count < (size_t)(6 + 6 * nops))
        return 2;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fault;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    for (int i = 0; i < 1000; i++) {
        t0 = now_ns();
        t1 = now_ns();
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    out[1] = best;
    out[2] = best;
    out[3] = count_maps();
    t0 = now_ns();
    for (int64_t i = 0; i < slots; i++)
        if (call(SYS_mmap, base + i * slot_bytes, vma_bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == -1)
            return 3;
    out[0] = now_ns() - t0;
    for (int64_t rep = 0; rep < repeats; rep++) {
        run_ops(in + 6, nops, base, res);
        for (int64_t k = 0; k < nops; k++)
            if (rep == 0 || res[2 * k] < out[5 + 2 * k])
                out[5 + 2 * k] = res[2 * k];
        if (rep == 0)
            for (int64_t k = 0; k < nops; k++)
                out[6 + 2 * k] = res[2 * k + 1];
    }
    out[4] = count_maps();
    {
        FILE *f = fopen(argv[2], "wb");
        if (!f || fwrite(out, 8, 5 + 2 * nops, f) != (size_t)(5 + 2 * nops))
            return 2;
        fclose(f);
    }
    return 0;
}
"""


def compile_runner(directory: Path) -> Path | None:
    """Compile :data:`C_SOURCE` with the system compiler into ``directory``; None when
    there is no compiler or it fails."""
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        return None
    source = directory / "bench_runner.c"
    binary = directory / "bench_runner"
    source.write_text(C_SOURCE)
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
