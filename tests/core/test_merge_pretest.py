"""__mmap_region() builds the merge struct only when a neighbour touches the new range with
the same vm_flags but VM_IGNORE_MERGE (mmap.__mmap_region); with a tracer listening it always
runs vma_merge_new_range(), so that the refusals are named. Both must leave the same VMAs:
the same random calls run on an untraced and a traced address space, compared after each."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

import vmamodel as v
from vmamodel.constants import (
    MADV_DONTFORK,
    MADV_GUARD_INSTALL,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_NORESERVE,
    MAP_PRIVATE,
    MAP_SHARED,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
)

P = 4096
PAGES = 24
PROTS = (PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, 0)
MAP_KINDS = (
    MAP_PRIVATE | MAP_ANONYMOUS,
    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
    MAP_SHARED | MAP_ANONYMOUS,
)

mmaps = st.tuples(
    st.just("mmap"), st.integers(0, PAGES - 1), st.integers(1, 4), st.sampled_from(PROTS),
    st.sampled_from(MAP_KINDS),
)
mprotects = st.tuples(
    st.just("mprotect"), st.integers(0, PAGES - 1), st.integers(1, 4), st.sampled_from(PROTS),
    st.just(0),
)
madvises = st.tuples(
    st.just("madvise"), st.integers(0, PAGES - 1), st.integers(1, 4),
    st.sampled_from((MADV_GUARD_INSTALL, MADV_DONTFORK)), st.just(0),
)
munmaps = st.tuples(
    st.just("munmap"), st.integers(0, PAGES - 1), st.integers(1, 4), st.just(0), st.just(0),
)
touches = st.tuples(
    st.just("touch"), st.integers(0, PAGES - 1), st.just(1), st.just(0), st.just(0),
)
calls = st.lists(st.one_of(mmaps, mprotects, madvises, munmaps, touches), max_size=30)


def _run(mm: v.AddressSpace, base: int, call: tuple[str, int, int, int, int]) -> object:
    """One call; its result or its errno."""
    name, page, pages, arg, flags = call
    addr, length = base + page * P, pages * P
    try:
        if name == "mmap":
            return mm.mmap(addr, length, arg, flags | MAP_FIXED)
        if name == "mprotect":
            return mm.mprotect(addr, length, arg)
        if name == "madvise":
            return mm.madvise(addr, length, arg)
        if name == "munmap":
            return mm.munmap(addr, length)
        return mm.touch(addr, True)
    except OSError as exc:
        return exc.errno


def _vmas(mm: v.AddressSpace) -> list[tuple[int, int, int, int]]:
    return [(vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags) for vma in mm.tree]


@settings(max_examples=300, deadline=None)
@given(calls)
@example([("mmap", 4, 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS),
          ("madvise", 4, 1, MADV_GUARD_INSTALL, 0),
          ("mmap", 6, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)])
def test_an_untraced_mmap_merges_as_a_traced_one(sequence: list[tuple[str, int, int, int, int]]
                                                 ) -> None:
    plain, traced = v.AddressSpace(), v.AddressSpace()
    base = plain.mmap_base - 64 * P
    with traced.tracer.collect():
        for call in sequence:
            assert _run(plain, base, call) == _run(traced, base, call), call
            assert _vmas(plain) == _vmas(traced), call
    assert plain.maps() == traced.maps()


def test_a_guard_marked_neighbour_still_merges_untraced() -> None:
    """VM_MAYBE_GUARD (sticky, in VM_IGNORE_MERGE) is no reason to skip the merge."""
    mm = v.AddressSpace()
    base = mm.mmap_base - 64 * P
    rw, anon = PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED
    mm.mmap(base, 2 * P, rw, anon)
    mm.madvise(base, P, MADV_GUARD_INSTALL)
    mm.mmap(base + 2 * P, P, rw, anon)
    mm.mmap(base - P, P, rw, anon)
    assert [(vma.vm_start, vma.vm_end) for vma in mm.tree] == [(base - P, base + 3 * P)]
