"""PageSet (the page tables' index by 2 MiB block) against a plain set doing the same thing,
and the page tables' cost: a zap or a move looks only at the blocks of its range."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vmamodel.constants import PAGE_SIZE
from vmamodel.pagetable import BLOCK_SIZE, PageSet, PageTable

#: pages within a few blocks, so that ranges cut blocks and cover some whole
PAGES = st.integers(0, 5 * BLOCK_SIZE // PAGE_SIZE).map(lambda n: 0x7F0000000000 + n * PAGE_SIZE)
RANGES = st.tuples(PAGES, st.integers(0, 3 * BLOCK_SIZE // PAGE_SIZE)).map(
    lambda r: (r[0], r[0] + r[1] * PAGE_SIZE))

OPS = st.one_of(
    st.tuples(st.just("add"), PAGES),
    st.tuples(st.just("discard"), PAGES),
    st.tuples(st.just("remove_range"), RANGES),
    st.tuples(st.just("take_range"), RANGES),
    st.tuples(st.just("move"), RANGES, PAGES),
    st.tuples(st.just("update"), RANGES),
)


def _apply(pages: PageSet, ref: set[int], op: tuple) -> None:  # type: ignore[type-arg]
    kind = op[0]
    if kind == "add":
        pages.add(op[1])
        ref.add(op[1])
    elif kind == "discard":
        pages.discard(op[1])
        ref.discard(op[1])
    elif kind == "update":
        start, end = op[1]
        pages.update(range(start, end, PAGE_SIZE))  # a block at a time
        ref.update(range(start, end, PAGE_SIZE))
        pages.update([end + PAGE_SIZE, end + 3 * PAGE_SIZE])  # a page at a time
        ref.update([end + PAGE_SIZE, end + 3 * PAGE_SIZE])
    elif kind in ("remove_range", "take_range"):
        start, end = op[1]
        inside = {p for p in ref if start <= p < end}
        if kind == "take_range":
            assert sorted(pages.take_range(start, end)) == sorted(inside)
        else:
            pages.remove_range(start, end)
        ref -= inside
    else:
        (start, end), new = op[1], op[2]
        inside = {p for p in ref if start <= p < end}
        pages.move(start, new, end - start)
        ref -= inside
        ref |= {p - start + new for p in inside}


@settings(max_examples=150, deadline=None)
@given(st.lists(OPS, max_size=40), RANGES)
def test_pageset_is_a_set(ops: list[tuple], probe: tuple[int, int]) -> None:  # type: ignore[type-arg]
    pages, ref = PageSet(), set[int]()
    for op in ops:
        _apply(pages, ref, op)
        assert pages == ref and len(pages) == len(ref) and bool(pages) == bool(ref)
    assert sorted(pages) == sorted(ref)
    start, end = probe
    inside = sorted(p for p in ref if start <= p < end)
    assert pages.pages_in(start, end) == inside
    assert pages.first_in(start, end) == (inside[0] if inside else None)
    assert all(p in pages for p in ref)
    assert all(p not in pages for p in range(start, end, PAGE_SIZE) if p not in ref)
    copy = pages.copy()
    copy.add(0x1000)
    assert pages == ref != copy


def test_pageset_compares_with_sets_both_ways() -> None:
    pages = PageSet([0x1000, 0x2000])
    assert pages == {0x1000, 0x2000} and {0x1000, 0x2000} == pages
    assert pages != {0x1000} and {0x1000} != pages
    assert {0x1000} <= pages and pages >= {0x1000} and not pages <= {0x1000}
    assert pages != [0x1000, 0x2000]  # only sets compare equal
    pages |= {0x3000}
    assert sorted(pages) == [0x1000, 0x2000, 0x3000] and "0x3000" in repr(pages)
    assert "x" not in pages


def test_zap_and_move_touch_only_their_blocks() -> None:
    """Zaps and moves of one page beside 200,000 present ones elsewhere, then zaps of whole
    blocks and of everything."""
    table = PageTable()
    base = 0x7F0000000000
    table.present.update(range(base, base + 200_000 * PAGE_SIZE, PAGE_SIZE))
    far = base + 1000 * BLOCK_SIZE
    table.present.add(far)
    table.anon.add(far)
    for _ in range(20_000):
        table.zap(far + PAGE_SIZE, far + 2 * PAGE_SIZE)
        table.move(far, far + BLOCK_SIZE, PAGE_SIZE)
        table.move(far + BLOCK_SIZE, far, PAGE_SIZE)
    assert far in table.present and far in table.anon and len(table.present) == 200_001
    table.zap(base, base + 100 * BLOCK_SIZE)
    assert len(table.present) == 200_001 - 100 * 512 and base not in table.present
    table.zap(0, 1 << 47)
    assert not table.present and not table.anon
