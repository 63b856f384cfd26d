"""The in-block search of the tree (tree._right/_left, the compiled build's path, probed
first at _guess): bisect's answer whatever the block starts say -- exact, stale (a block
whose first VMA moved), the last block, addresses outside [-2**63, 2**63)."""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right

import pytest

import vmamodel as v
from vmamodel import tree as t
from vmamodel.vma import Vma

P = 4096


def _block(rnd: random.Random, mm: v.AddressSpace) -> list[Vma]:
    starts = sorted(rnd.sample(range(200), rnd.randint(1, 12)))
    ends = [*starts[1:], starts[-1] + rnd.randint(1, 5)]
    return [Vma(mm, i, s * P, min(e, s + rnd.randint(1, 5)) * P, 0, 0, None, None, 0)
            for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


@pytest.mark.parametrize("seed", range(4))
def test_in_block_search_is_bisect(seed: int) -> None:
    rnd = random.Random(seed)
    mm = v.AddressSpace()
    addrs = [*range(-2 * P, 210 * P, P // 4), -(1 << 70), -(1 << 63), (1 << 63) - 1, 1 << 63]
    for _ in range(150):
        blk = _block(rnd, mm)
        keys = [vma.vm_start for vma in blk]
        first = keys[0] + P * rnd.choice([0, 0, -rnd.randint(1, 50), rnd.randint(1, 50)])
        mins = t._keys_insert(t._new_keys(), 0, first)
        if rnd.random() < 0.7:  # else block 0 is the last block
            mins = t._keys_insert(mins, 1, blk[-1].vm_end + P * rnd.randint(-60, 60))
        for addr in addrs:
            assert t._right(blk, addr, mins, 0) == bisect_right(keys, addr), (keys, addr)
            assert t._left(blk, addr, mins, 0) == bisect_left(keys, addr), (keys, addr)


def test_block_start_search_outside_i64() -> None:
    mins = t._new_keys()
    for i, start in enumerate([0, P, 5 * P, (1 << 63) - P]):
        mins = t._keys_insert(mins, i, start)
    for addr in (-(1 << 64), -(1 << 63), -1, 0, P, (1 << 63) - 1, 1 << 63, 1 << 64):
        assert t._right_int(mins, addr) == bisect_right(list(mins), addr)
        assert t._left_int(mins, addr) == bisect_left(list(mins), addr)
        assert t._keys_left(mins, addr) == bisect_left(list(mins), addr)
