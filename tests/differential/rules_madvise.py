"""Hypothesis rules for madvise(2), mixed into a DifferentialMachine: every advice (and a few
invalid ones) over ranges that start near an existing VMA, cross VMAs and holes, and
sometimes have an unaligned start or length."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

import vmamodel as v
from core.util import at

from .machine import WINDOW, P

ADVICES = st.sampled_from([
    v.MADV_NORMAL, v.MADV_RANDOM, v.MADV_SEQUENTIAL, v.MADV_WILLNEED, v.MADV_DONTNEED,
    v.MADV_FREE, v.MADV_REMOVE, v.MADV_DONTFORK, v.MADV_DOFORK, v.MADV_MERGEABLE,
    v.MADV_UNMERGEABLE, v.MADV_HUGEPAGE, v.MADV_NOHUGEPAGE, v.MADV_DONTDUMP, v.MADV_DODUMP,
    v.MADV_WIPEONFORK, v.MADV_KEEPONFORK, v.MADV_COLD, v.MADV_PAGEOUT, v.MADV_POPULATE_READ,
    v.MADV_POPULATE_WRITE, v.MADV_DONTNEED_LOCKED, v.MADV_COLLAPSE, v.MADV_GUARD_INSTALL,
    v.MADV_GUARD_INSTALL, v.MADV_GUARD_REMOVE, v.MADV_HWPOISON, 999,
])
#: (which VMA, pages from its start): ranges mostly begin inside or just before a VMA.
TARGETS = st.tuples(st.integers(0, 63), st.integers(-2, 6))
LENGTHS = st.one_of(st.integers(1, 4), st.integers(0, 12))


def target_page(model: Any, target: tuple[int, int]) -> int:
    """A page of the window near the chosen VMA of ``model`` (any page when it is empty)."""
    which, offset = target
    vmas = model.vmas()
    if not vmas:
        return which % WINDOW
    base = (vmas[which % len(vmas)].vm_start - at(0)) // P
    return min(max(base + offset, 0), WINDOW - 1)


class MadviseRules:
    """Rules only: the machine class that mixes this in provides ``both`` and ``model``."""

    @rule(
        near=TARGETS,
        npages=LENGTHS,
        advice=ADVICES,
        skew=st.sampled_from([0] * 10 + [1, 100]),
    )
    def madvise(self, near: tuple[int, int], npages: int, advice: int, skew: int) -> None:
        page = target_page(self.model, near)  # type: ignore[attr-defined]
        self.both("madvise", at(page) + skew, npages * P - skew // 2, advice)  # type: ignore[attr-defined]
