"""Page-table cost of munmap and mremap beside many faulted pages.

A model maps PAGES pages, faults all of them in (write) or only the first (so that the VMA has
its anon_vma in both cases and only the number of pages differs), then times one-page munmaps
and mremap moves (a one-page VMA grown to two pages where the next page is mapped, so it must
move) among them. Prints microseconds a call and the ratio all faulted/one faulted: a zap or
a move should cost what it removes or moves, so the ratio should not grow with PAGES (it is
about 1.3 here whether 10,000 or 400,000 pages are faulted: the range's own pages; before
the page tables were indexed by block, 100,000 faulted pages made a one-page munmap about
9 ms and a move about 40 ms).

    python benchmarks/pagetable_bench.py [--pages 100000] [--calls 2000]
"""

from __future__ import annotations

import argparse
import time

from vmamodel.constants import MAP_ANONYMOUS, MAP_PRIVATE, MREMAP_MAYMOVE, PAGE_SIZE
from vmamodel.mm import AddressSpace

PROT_RW = 3


def timed(pages: int, calls: int, faulted: bool) -> tuple[float, float]:
    """(µs a one-page munmap, µs a one-page mremap move) on a space of ``pages`` pages."""
    mm = AddressSpace()
    base = mm.mmap(0, pages * PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    for i in range(pages if faulted else 1):
        mm.touch(base + i * PAGE_SIZE, True)
    start = time.process_time()
    for i in range(0, 2 * calls, 2):
        mm.munmap(base + i * PAGE_SIZE, PAGE_SIZE)
    unmapped = time.process_time()
    for i in range(2 * calls + 1, 4 * calls, 2):
        mm.mremap(base + i * PAGE_SIZE, PAGE_SIZE, 2 * PAGE_SIZE, MREMAP_MAYMOVE)
    moved = time.process_time()
    return (unmapped - start) / calls * 1e6, (moved - unmapped) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args()
    if args.pages < 4 * args.calls + 2:
        parser.error("--pages must be at least 4 * --calls + 2")
    empty = timed(args.pages, args.calls, faulted=False)
    full = timed(args.pages, args.calls, faulted=True)
    for what, bare, busy in zip(("munmap of one page", "mremap move of one page"), empty,
                                full, strict=True):
        print(f"{what}: {bare:.1f} µs with one page faulted, {busy:.1f} µs with "
              f"{args.pages:,} faulted: ratio {busy / bare:.2f}")


if __name__ == "__main__":
    main()
