"""VmaTree against a plain sorted list: every lookup and gap search, after random insertions,
removals and range changes, with blocks small enough that splits and joins happen often."""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from vmamodel import AddressSpace
from vmamodel import tree as tree_module
from vmamodel.constants import PAGE_SIZE
from vmamodel.tree import VmaTree
from vmamodel.vma import Vma

PAGES = 160  # the address space of the test, in units of one "page" = 1
INF = 1 << 62


def make_vma(start: int, end: int, flags: int = 0) -> Vma:
    """A VMA with only what the tree reads: range, pgoff and flags."""
    return Vma(None, 0, start, end, start, flags)


Gap = tuple[int, int, Vma | None]


class Reference:
    """The same questions answered by linear scans of a sorted list."""

    def __init__(self) -> None:
        self.vmas: list[Vma] = []

    def sort(self) -> None:
        self.vmas.sort(key=lambda v: v.vm_start)

    def find(self, addr: int) -> Vma | None:
        return next((v for v in self.vmas if v.vm_end > addr), None)

    def lookup(self, addr: int) -> Vma | None:
        return next((v for v in self.vmas if v.vm_start <= addr < v.vm_end), None)

    def before(self, vma: Vma | None) -> Vma | None:
        if vma is None:
            return self.vmas[-1] if self.vmas else None
        i = self.vmas.index(vma)
        return self.vmas[i - 1] if i else None

    def after(self, vma: Vma) -> Vma | None:
        i = self.vmas.index(vma) + 1
        return self.vmas[i] if i < len(self.vmas) else None

    def prev_before(self, addr: int) -> Vma | None:
        return next((v for v in reversed(self.vmas) if v.vm_end <= addr), None)

    def next_from(self, addr: int) -> Vma | None:
        return next((v for v in self.vmas if v.vm_start >= addr), None)

    def range(self, start: int, end: int) -> list[Vma]:
        return [v for v in self.vmas if v.vm_start < end and v.vm_end > start]

    def free(self) -> Iterator[Gap]:
        """Every maximal free range [a, b) of [0, INF), with the VMA after it."""
        prev_end = 0
        for vma in self.vmas:
            if vma.vm_start > prev_end:
                yield prev_end, vma.vm_start, vma
            prev_end = vma.vm_end
        yield prev_end, INF, None

    def gaps(self, low: int, high: int) -> list[Gap]:
        """The free ranges clipped to [low, high), lowest first."""
        out = []
        for start, end, following in self.free():
            start, end = max(start, low), min(end, high)
            if start < end:
                out.append((start, end, following))
        return out

    def free_slots(self) -> list[tuple[int, int]]:
        return [(a, min(b, PAGES)) for a, b, _ in self.free() if a < PAGES]


addresses = st.integers(min_value=0, max_value=PAGES + 4)


class TreeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tree = VmaTree(shift=0)
        self.ref = Reference()

    @initialize(load=st.sampled_from([1, 2, 3, 8, 64]), fanout=st.sampled_from([1, 2, 4, 8]))
    def small_blocks(self, load: int, fanout: int) -> None:
        # Blocks of 1 to 2 * load entries and groups of 1 to 2 * fanout blocks, so that a
        # short run splits and joins both.
        self.tree = VmaTree(load=load, fanout=fanout, shift=0)

    @rule(data=st.data())
    def insert(self, data: st.DataObject) -> None:
        slots = self.ref.free_slots()
        if not slots:
            return
        lo, hi = data.draw(st.sampled_from(slots))
        start = data.draw(st.integers(lo, hi - 1))
        end = data.draw(st.integers(start + 1, hi))
        vma = make_vma(start, end, data.draw(st.sampled_from([0x73, 0x71])))
        self.tree.insert(vma)
        self.ref.vmas.append(vma)
        self.ref.sort()

    @rule(count=st.integers(1, 12))
    def insert_many_in_order(self, count: int) -> None:
        """Runs of single-page VMAs with one-page holes, to fill blocks."""
        starts = [s for lo, hi in self.ref.free_slots() for s in range(lo, hi, 2)][:count]
        for start in starts:
            vma = make_vma(start, start + 1, 0x73)
            self.tree.insert(vma)
            self.ref.vmas.append(vma)
        self.ref.sort()

    @precondition(lambda self: self.ref.vmas)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        vma = data.draw(st.sampled_from(self.ref.vmas))
        self.tree.remove(vma)
        self.ref.vmas.remove(vma)

    @precondition(lambda self: self.ref.vmas)
    @rule(data=st.data())
    def set_range(self, data: st.DataObject) -> None:
        vma = data.draw(st.sampled_from(self.ref.vmas))
        prev, nxt = self.ref.before(vma), self.ref.after(vma)
        lo = prev.vm_end if prev is not None else 0
        hi = nxt.vm_start if nxt is not None else PAGES + 8
        start = data.draw(st.integers(lo, hi - 1))
        end = data.draw(st.integers(start + 1, hi))
        self.tree.set_range(vma, start, end, start)
        assert (vma.vm_start, vma.vm_end, vma.vm_pgoff) == (start, end, start)

    @rule(addr=addresses)
    def point_lookups(self, addr: int) -> None:
        ref, tree = self.ref, self.tree
        assert tree.find(addr) is ref.find(addr)
        assert tree.lookup(addr) is ref.lookup(addr)
        found = ref.find(addr)
        assert tree.find_prev(addr) == (found, ref.before(found))
        assert tree.prev_before(addr) is ref.prev_before(addr)
        assert tree.next_from(addr) is ref.next_from(addr)

    @rule(start=addresses, size=st.integers(0, 40))
    def range_lookups(self, start: int, size: int) -> None:
        end = start + size
        expected = self.ref.range(start, end)
        assert self.tree.range(start, end) == expected
        assert self.tree.find_intersection(start, end) is (expected[0] if expected else None)

    @precondition(lambda self: self.ref.vmas)
    @rule(data=st.data())
    def neighbours(self, data: st.DataObject) -> None:
        vma = data.draw(st.sampled_from(self.ref.vmas))
        assert self.tree.prev_of(vma) is self.ref.before(vma)
        assert self.tree.next_of(vma) is self.ref.after(vma)

    @rule(low=addresses, high=addresses, length=st.integers(0, 12))
    def gap_searches(self, low: int, high: int, length: int) -> None:
        expected = self.ref.gaps(low, high)
        assert list(self.tree.gaps_bottomup(low, high)) == expected
        assert list(self.tree.gaps_topdown(low, high)) == expected[::-1]
        fitting = [gap for gap in expected if gap[1] - gap[0] >= max(length, 1)]
        assert self.tree.lowest_gap(low, high, length) == (fitting[0] if fitting else None)
        assert self.tree.highest_gap(low, high, length) == (fitting[-1] if fitting else None)

    @invariant()
    def same_contents(self) -> None:
        assert list(self.tree) == self.ref.vmas
        assert len(self.tree) == len(self.ref.vmas)
        self.tree.validate()


TreeMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
test_tree_against_a_sorted_list = TreeMachine.TestCase


def test_missing_vma_is_a_key_error() -> None:
    tree = VmaTree(shift=0)
    inside, outside = make_vma(10, 20), make_vma(30, 40)
    tree.insert(inside)
    with pytest.raises(KeyError):
        tree.remove(outside)
    with pytest.raises(KeyError):
        tree.next_of(make_vma(10, 20))


def test_overlapping_insert_is_refused() -> None:
    tree = VmaTree(shift=0)
    tree.insert(make_vma(10, 20))
    for start, end in ((5, 11), (19, 25), (12, 15), (0, 100)):
        with pytest.raises(AssertionError, match="overlaps"):
            tree.insert(make_vma(start, end))
    assert len(tree) == 1


def test_set_range_of_a_vma_outside_the_tree_only_assigns() -> None:
    tree = VmaTree(shift=0)
    tree.insert(make_vma(10, 20))
    loose = make_vma(30, 40)
    tree.set_range(loose, 50, 60, 7)
    assert (loose.vm_start, loose.vm_end, loose.vm_pgoff) == (50, 60, 7)
    assert tree.next_from(21) is None
    tree.validate()


def test_validate_notices_a_range_changed_behind_its_back() -> None:
    tree = VmaTree(shift=0)
    low, high = make_vma(0, 10), make_vma(20, 30)
    tree.insert(low)
    tree.insert(high)
    high.vm_start = 15
    with pytest.raises(AssertionError, match="set_range"):
        tree.validate()


def test_many_vmas_keep_every_gap_search_right() -> None:
    """Thousands of VMAs in the default block size: one hole larger than the rest at
    a known place is what both searches find, from any limit above or below it."""
    tree = VmaTree(shift=0)
    vmas = [make_vma(4 * i, 4 * i + 2) for i in range(5000)]
    for vma in vmas:
        tree.insert(vma)
    tree.remove(vmas[1234])
    big = (vmas[1233].vm_end, vmas[1235].vm_start, vmas[1235])
    assert tree.highest_gap(0, 4 * 5000, 3) == big
    assert tree.lowest_gap(0, 4 * 5000, 3) == big
    assert tree.highest_gap(0, big[0] + 2, 3) is None
    assert tree.lowest_gap(big[1] - 2, 4 * 5000, 3) is None
    assert tree.lowest_gap(big[1] - 2, 4 * 5000 + 10, 3) == (4 * 5000 - 2, 4 * 5000 + 10, None)
    tree.validate()


def _keys(values: list[int]) -> tree_module.vec[tree_module.i64]:
    """Block starts as the tree keeps them (a vec compiled, a list in pure Python)."""
    keys = tree_module._new_keys()
    for value in values:
        keys = tree_module._keys_insert(keys, len(keys), value)
    return keys


def _block(count: int, even: bool) -> list[Vma]:
    """count VMAs, evenly spaced (the searches' first guess is right) or not."""
    if even:
        return [make_vma(4 * i + 2, 4 * i + 4) for i in range(count)]
    rng = random.Random(count)
    starts = sorted(rng.sample(range(0, 40 * count, 2), count))
    return [make_vma(start, start + 1 + (start % 3 == 0)) for start in starts]


@pytest.mark.parametrize("even", [True, False], ids=["even", "uneven"])
@pytest.mark.parametrize("count", [0, 1, 2, 7, 64])
def test_native_block_search_matches_bisect(count: int, even: bool) -> None:
    """The loops the compiled build searches a block with agree with bisect everywhere:
    inside and outside the block, as the first block of two or the last one (whose guess
    is bounded by its last VMA's end), with evenly spread VMAs (the guessed first probe is
    right) or not."""
    blk = _block(count, even)
    starts = [vma.vm_start for vma in blk]
    top = blk[-1].vm_end + 8 if blk else 8
    keys = _keys(starts)
    assert tree_module._right_int(keys, 1 << 64) == len(starts)  # past any i64 key
    assert tree_module._left_int(keys, 1 << 64) == len(starts)
    assert tree_module._right_int(keys, -(1 << 64)) == tree_module._left_int(keys, -(1 << 64)) == 0
    layouts = [_keys(starts[:1]), _keys([*starts[:1], top - 5])] if blk else []
    for addr in range(-1, top):
        for mins in layouts:
            assert tree_module._right(blk, addr, mins, 0) == bisect_right(starts, addr)
            assert tree_module._left(blk, addr, mins, 0) == bisect_left(starts, addr)
        assert tree_module._right_int(keys, addr) == bisect_right(starts, addr)
        assert tree_module._left_int(keys, addr) == bisect_left(starts, addr)
    # Equal keys (block starts never repeat, but the loops must still be bisect's).
    dup = sorted(starts + starts)
    dup_keys = _keys(dup)
    for addr in range(-1, top):
        assert tree_module._right_int(dup_keys, addr) == bisect_right(dup, addr)
        assert tree_module._left_int(dup_keys, addr) == bisect_left(dup, addr)


def test_block_starts_insert_and_delete_like_a_list() -> None:
    """_keys_insert and _keys_delete keep the block starts as list.insert and del would."""
    rng = random.Random(5)
    ref: list[int] = []
    keys = tree_module._new_keys()
    for _ in range(300):
        if ref and rng.random() < 0.4:
            i = rng.randrange(len(ref))
            del ref[i]
            keys = tree_module._keys_delete(keys, i)
        else:
            i = rng.randrange(len(ref) + 1)
            value = rng.randrange(1 << 48)
            ref.insert(i, value)
            keys = tree_module._keys_insert(keys, i, value)
        assert list(keys) == ref


def _random_block(rnd: random.Random, mm: AddressSpace) -> list[Vma]:
    starts = sorted(rnd.sample(range(200), rnd.randint(1, 12)))
    ends = [*starts[1:], starts[-1] + rnd.randint(1, 5)]
    return [Vma(mm, i, s * PAGE_SIZE, min(e, s + rnd.randint(1, 5)) * PAGE_SIZE, 0, 0, None,
                None, 0)
            for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


@pytest.mark.parametrize("seed", range(4))
def test_in_block_search_is_bisect(seed: int) -> None:
    """The in-block search (the compiled build's path, probed first at _guess) gives
    bisect's answer whatever the block starts say: exact, stale (a block whose first VMA
    moved), the last block, addresses outside [-2**63, 2**63)."""
    rnd = random.Random(seed)
    mm = AddressSpace()
    addrs = [*range(-2 * PAGE_SIZE, 210 * PAGE_SIZE, PAGE_SIZE // 4),
             -(1 << 70), -(1 << 63), (1 << 63) - 1, 1 << 63]
    for _ in range(150):
        blk = _random_block(rnd, mm)
        keys = [vma.vm_start for vma in blk]
        first = keys[0] + PAGE_SIZE * rnd.choice([0, 0, -rnd.randint(1, 50), rnd.randint(1, 50)])
        mins = tree_module._keys_insert(tree_module._new_keys(), 0, first)
        if rnd.random() < 0.7:  # else block 0 is the last block
            limit = blk[-1].vm_end + PAGE_SIZE * rnd.randint(-60, 60)
            mins = tree_module._keys_insert(mins, 1, limit)
        for addr in addrs:
            assert tree_module._right(blk, addr, mins, 0) == bisect_right(keys, addr), (keys, addr)
            assert tree_module._left(blk, addr, mins, 0) == bisect_left(keys, addr), (keys, addr)


def test_block_start_search_outside_i64() -> None:
    mins = tree_module._new_keys()
    for i, start in enumerate([0, PAGE_SIZE, 5 * PAGE_SIZE, (1 << 63) - PAGE_SIZE]):
        mins = tree_module._keys_insert(mins, i, start)
    for addr in (-(1 << 64), -(1 << 63), -1, 0, PAGE_SIZE, (1 << 63) - 1, 1 << 63, 1 << 64):
        assert tree_module._right_int(mins, addr) == bisect_right(list(mins), addr)
        assert tree_module._left_int(mins, addr) == bisect_left(list(mins), addr)
        assert tree_module._keys_left(mins, addr) == bisect_left(list(mins), addr)


def _check_searches(tree: VmaTree, ref: Reference, rng: random.Random, top: int,
                    unit: int = 1) -> None:
    """Both gap searches against the brute-force list of gaps, at random limits (anywhere,
    not only at multiples of unit) and lengths (whole units and not)."""
    for _ in range(4):
        low, high = sorted((rng.randrange((top + 8) * unit), rng.randrange((top + 8) * unit)))
        length = rng.choice((1, 2, 3, 5, 9, 17)) * unit + rng.choice((0, 0, 1, -1)) * (unit > 1)
        fitting = [gap for gap in ref.gaps(low, high) if gap[1] - gap[0] >= length]
        assert tree.highest_gap(low, high, length) == (fitting[-1] if fitting else None)
        assert tree.lowest_gap(low, high, length) == (fitting[0] if fitting else None)


@pytest.mark.parametrize(("load", "fanout"), [(1, 1), (2, 2), (4, 4), (8, 2), (8, 8), (64, 16)])
def test_random_sequences_keep_the_gap_index(load: int, fanout: int) -> None:
    """Thousands of random insertions, removals and range changes, growing then shrinking
    the tree (so that blocks and groups split, join and empty): validate() after every
    step, and both gap searches against a brute-force scan every few steps."""
    rng = random.Random(load * 100 + fanout)
    tree, ref = VmaTree(load=load, fanout=fanout, shift=0), Reference()
    _random_sequence(tree, ref, rng, 6000, 1)


@pytest.mark.parametrize("load", [2, 64])
def test_gaps_counted_in_pages_answer_in_bytes(load: int) -> None:
    """The model's tree counts gaps in pages: searches for lengths that are not whole
    pages, and limits inside pages, still answer as the byte-exact brute force does."""
    rng = random.Random(load)
    tree, ref = VmaTree(load=load, fanout=2), Reference()
    _random_sequence(tree, ref, rng, 3000, PAGE_SIZE)


def test_an_unaligned_vma_is_refused() -> None:
    tree = VmaTree()
    tree.insert(make_vma(PAGE_SIZE, 2 * PAGE_SIZE))
    with pytest.raises(AssertionError, match="aligned"):
        tree.insert(make_vma(4 * PAGE_SIZE, 4 * PAGE_SIZE + 1))
    vma = tree.find(0)
    assert vma is not None
    with pytest.raises(AssertionError, match="aligned"):
        tree.set_range(vma, PAGE_SIZE // 2, 2 * PAGE_SIZE, 0)
    assert len(tree) == 1


def _random_sequence(tree: VmaTree, ref: Reference, rng: random.Random, top: int,
                     unit: int) -> None:
    """Random steps on tree and ref, at addresses in multiples of unit below top * unit."""
    for step in range(4000):
        grow = (step // 700) % 2 == 0
        action = rng.random()
        if not ref.vmas or action < (0.6 if grow else 0.25):
            start = rng.randrange(top) * unit
            if ref.lookup(start) is None:
                nxt = ref.next_from(start)
                limit = min(top * unit, nxt.vm_start if nxt is not None else top * unit)
                vma = make_vma(start, min(limit, start + rng.randrange(1, 4) * unit))
                tree.insert(vma)
                ref.vmas.append(vma)
                ref.sort()
        elif action < 0.85:
            vma = ref.vmas.pop(rng.randrange(len(ref.vmas)))
            tree.remove(vma)
        else:
            vma = rng.choice(ref.vmas)
            prev, nxt = ref.before(vma), ref.after(vma)
            lo = prev.vm_end // unit if prev is not None else 0
            hi = nxt.vm_start // unit if nxt is not None else top
            start = rng.randrange(lo, hi)
            end = rng.randrange(start + 1, hi + 1)
            tree.set_range(vma, start * unit, end * unit, start)
        tree.validate()
        if step % 7 == 0:
            _check_searches(tree, ref, rng, top, unit)
    assert list(tree) == ref.vmas


def test_block_splits_keep_the_max_tree() -> None:
    """Mappings placed one below the other at the bottom of the space (as top-down mmaps
    land) split the lowest block every few dozen insertions; the max-tree over the groups
    is rebuilt only when a group splits, not on every block split."""
    tree = VmaTree(load=4, fanout=4, shift=0)
    top = 1 << 40
    tree.insert(make_vma(top - 1, top))
    rebuilds = 0
    seg = None
    for _ in range(64 * 40):
        # From the top, past every mapping so far: each lies right below the last.
        found = tree.highest_gap(0, top, 2)
        assert found is not None and found[0] == 0
        tree.insert(make_vma(found[1] - 1, found[1]))
        if tree._levels is not None and tree._levels is not seg:
            rebuilds += 1
            seg = tree._levels
    tree.validate()
    blocks, groups = len(tree._blocks), len(tree._gkeys)
    assert blocks >= 4 * groups >= 200
    assert rebuilds <= groups


def test_tree_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="load=0"):
        VmaTree(load=0)
    with pytest.raises(ValueError, match="fanout=0"):
        VmaTree(fanout=0)


def test_a_deep_max_tree_answers_like_a_scan() -> None:
    """Tiny blocks and groups: thousands of VMAs make a max-tree of three levels and more;
    searches from everywhere agree with the brute force, before and after removing half."""
    rng = random.Random(7)
    tree, ref = VmaTree(load=1, fanout=1, shift=0), Reference()
    start = 0
    for _ in range(3000):
        start += rng.choice((1, 1, 2, 3, 5, 8, 13))
        vma = make_vma(start, start + 1)
        tree.insert(vma)
        ref.vmas.append(vma)
        start += 1
    for _ in range(2):
        assert tree.highest_gap(0, start, start) is None  # a search through every level
        assert tree._levels is not None and len(tree._levels) >= 3
        tree.validate()
        for _ in range(300):
            _check_searches(tree, ref, rng, start)
        for vma in rng.sample(ref.vmas, len(ref.vmas) // 2):
            tree.remove(vma)
            ref.vmas.remove(vma)


def test_node_searches_agree_with_a_scan() -> None:
    """The searches of a node's entries (C loops in pure Python, native scans of the lists
    compiled) give the last or first index whose value fits, in any range, as a scan does."""
    from array import array

    rng = random.Random(3)
    for _ in range(400):
        raw = [rng.choice((0, 1, 2, 5, 9, 40, 1 << 40)) for _ in range(rng.randrange(1, 70))]
        gaps = array("q", raw)
        lo = rng.randrange(len(raw))
        hi = rng.randrange(lo + 1, len(raw) + 1)
        length = rng.choice((1, 2, 6, 41, 1 << 40))
        fits = [i for i in range(lo, hi) if raw[i] >= length]
        last, first = (fits[-1], fits[0]) if fits else (-1, -1)
        assert tree_module._max_of(raw, lo, hi) == max(raw[lo:hi])
        for find_last, find_first, values in (
            (tree_module._last_at_least, tree_module._first_at_least, raw),
            (tree_module._scan_last, tree_module._scan_first, raw),
            (tree_module._last_gap, tree_module._first_gap, gaps),
        ):
            assert find_last(values, lo, hi, length) == last
            assert find_first(values, lo, hi, length) == first
        if fits:
            top = max(raw[lo:hi])
            assert tree_module._last_from_top(raw, lo, hi, length, top) == last
            assert tree_module._first_from_top(raw, lo, hi, length, top) == first
            assert tree_module._last_from_top(gaps, lo, hi, length, top) == last
            assert tree_module._first_from_top(gaps, lo, hi, length, top) == first


@pytest.mark.parametrize(("load", "fanout"), [(2, 1), (8, 2), (64, 16)])
def test_equal_gaps_keep_their_count(load: int, fanout: int) -> None:
    """A grid of one-unit VMAs with equal gaps (as the benchmark's spaces): mappings put
    into and taken out of the holes, ranges moved by one and back, shrink and restore
    gaps that equal their block's largest; the counts validate() checks stay right, and
    the searches agree with the brute force."""
    rng = random.Random(load + fanout)
    tree, ref = VmaTree(load=load, fanout=fanout, shift=0), Reference()
    slots = 600
    for i in range(slots):
        vma = make_vma(8 * i + 8, 8 * i + 9)
        tree.insert(vma)
        ref.vmas.append(vma)
    grid = list(ref.vmas)
    for step in range(3000):
        action = rng.random()
        slot = rng.randrange(slots)
        if action < 0.4:
            hole = 8 * slot + 8 + rng.choice((2, 4, 6))
            if ref.lookup(hole) is None and ref.lookup(hole + 1) is None:
                vma = make_vma(hole, hole + 1)
                tree.insert(vma)
                ref.vmas.append(vma)
                ref.sort()
        elif action < 0.7:
            extra = [vma for vma in ref.vmas[slot // 2: slot // 2 + 4] if vma not in grid]
            if extra:
                tree.remove(extra[0])
                ref.vmas.remove(extra[0])
        else:
            vma = grid[slot]
            home = 8 * slot + 8
            start = home if vma.vm_start != home else home + rng.choice((-1, 1))
            prev, nxt = ref.before(vma), ref.after(vma)
            if (prev is None or prev.vm_end <= start) and (nxt is None or nxt.vm_start > start + 1):
                tree.set_range(vma, start, start + 1, start)
        tree.validate()
        if step % 50 == 0:
            _check_searches(tree, ref, rng, 8 * slots + 8)
    assert list(tree) == ref.vmas


def test_searches_leave_the_position_inserts_use() -> None:
    """A gap search and find_prev leave the tree's position at the VMA above the gap; an
    insert there reuses it, and a position left anywhere else is not trusted."""
    tree, ref = VmaTree(load=4, fanout=2, shift=0), Reference()
    rng = random.Random(5)
    top = 0
    for _ in range(200):
        top += rng.choice((1, 2, 3, 5, 8, 13))
        vma = make_vma(top, top + 2)
        tree.insert(vma)
        ref.vmas.append(vma)
        top += 2
    for _ in range(1500):
        high = rng.randrange(10, top + 20)
        length = rng.choice((1, 3, 8))
        found = tree.highest_gap(0, high, length)
        if found is None:
            continue
        # Filling the gap or not, so that the block's new largest gap is either piece of
        # it or one of the others.
        size = rng.randrange(1, length + 1)
        start = found[1] - size
        # A lookup somewhere else in between moves the position (or not) at random.
        if rng.random() < 0.5:
            tree.find_prev(rng.randrange(top + 20))
        after, before = tree.find_prev(start)
        assert (after, before) == (ref.find(start), ref.before(ref.find(start)))
        vma = make_vma(start, start + size)
        tree.insert(vma)
        ref.vmas.append(vma)
        ref.sort()
        tree.validate()
        assert list(tree) == ref.vmas
        # find() tries the position the insert left (munmap's find after its mmap), and
        # must not trust it for an address elsewhere.
        for probe in (start, start - 1, start + size, rng.randrange(top + 20)):
            assert tree.find(probe) is ref.find(probe)
        # Unmapping what was just mapped (the placed pair), or anything.
        action = rng.random()
        if action < 0.7:
            victim = vma if action < 0.4 else rng.choice(ref.vmas)
            tree.remove(victim)
            ref.vmas.remove(victim)
            tree.validate()
    assert list(tree) == ref.vmas


@pytest.mark.parametrize(("load", "fanout"), [(2, 1), (4, 2), (64, 16)])
def test_the_largest_gap_keeps_its_bound_per_level(load: int, fanout: int) -> None:
    """A top-down build: the lowest block holds the largest gap of the tree, so its shrinks
    and growths set its group's and each max-tree node's maximum from the bound kept on the
    others (_kb, _krest); gaps opened elsewhere, larger or not than that bound, and the
    splits of the build must forget or keep it rightly (validate checks it each step)."""
    rng = random.Random(11)
    tree, ref = VmaTree(load=load, fanout=fanout, shift=0), Reference()
    top = 1 << 30
    kept = 0
    for step in range(3000):
        # A placed mmap: right below the lowest mapping (the search's answer).
        found = tree.highest_gap(0, top, 2)
        assert found == [g for g in ref.gaps(0, top) if g[1] - g[0] >= 2][-1]
        vma = make_vma(found[1] - 1, found[1], step & 1)
        tree.insert(vma)
        ref.vmas.append(vma)
        ref.sort()
        kept += tree._kb >= 0
        roll = rng.random()
        if roll < 0.3:
            tree.remove(vma)  # its munmap (the placed pair)
            ref.vmas.remove(vma)
        elif roll < 0.4 and len(ref.vmas) > 2:
            # An unmap above the bottom: a gap of a few pages, or, when the mappings around
            # go too, one larger than every gap but the lowest.
            victim = rng.choice(ref.vmas[1:])
            tree.remove(victim)
            ref.vmas.remove(victim)
        tree.validate()
        assert list(tree) == ref.vmas
    assert kept > 1000


def test_a_top_down_build_keeps_what_its_searches_learnt() -> None:
    """Each mapping placed right below the last: the insert into the lowest block's only
    largest gap keeps the bound the search learnt on the block's other gaps (_rest), and
    the largest gap's bound per level (_kb); so the next search and insert scan no block
    but after a split."""
    tree = VmaTree(load=64, fanout=16, shift=0)
    top = 1 << 40
    tree.insert(make_vma(top - 1, top))
    steps = 20_000
    kept_rest = kept_levels = 0
    for step in range(steps):
        found = tree.highest_gap(0, top, 1)
        assert found is not None and found[0] == 0
        tree.insert(make_vma(found[1] - 1, found[1], step & 1))
        kept_rest += tree._rest >= 0
        kept_levels += tree._kb >= 0
    tree.validate()
    # A split (every 64 insertions) forgets both until the next search and shrink.
    assert kept_rest > 0.95 * steps
    assert kept_levels > 0.95 * steps
