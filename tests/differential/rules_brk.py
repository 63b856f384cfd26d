"""Hypothesis rules for brk, mixed into a DifferentialMachine: breaks below, inside and past
the heap (aligned or not), and mmap / munmap / mprotect / touch in the pages around it, so
that the heap grows into, shrinks through and expands next to other mappings.

Both backends have their heap at the same start_brk (the top of the host's arena; the model
is configured with host_model_kwargs()), so addresses are counted from it.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from vmamodel.fuzz import generate as gen

from .machine import PROTS, P

#: Pages above start_brk that the rules play in.
HEAP_PAGES = st.integers(*gen.HEAP_PAGE_RANGE)
BREAKS = st.integers(*gen.BREAK_RANGE)
SKEWS = st.sampled_from(gen.BRK_SKEWS)
NEAR_FLAGS = st.sampled_from(gen.NEAR_HEAP_FLAGS)


class BrkRules:
    """Rules only: the machine class that mixes this in provides ``both`` and ``model``."""

    model: Any

    def heap_page(self, page: int) -> int:
        return gen.heap_page(self.model, page)

    @rule(page=BREAKS, skew=SKEWS)
    def brk(self, page: int, skew: int) -> None:
        self.both("brk", self.heap_page(page) + skew)  # type: ignore[attr-defined]

    @rule(page=HEAP_PAGES, npages=st.integers(1, 6), prot=PROTS, flags=NEAR_FLAGS)
    def mmap_near_heap(self, page: int, npages: int, prot: int, flags: int) -> None:
        self.both("mmap", self.heap_page(page), npages * P, prot, flags)  # type: ignore[attr-defined]

    @rule(page=HEAP_PAGES, npages=st.integers(1, 8))
    def munmap_near_heap(self, page: int, npages: int) -> None:
        self.both("munmap", self.heap_page(page), npages * P)  # type: ignore[attr-defined]

    @rule(page=HEAP_PAGES, npages=st.integers(1, 8), prot=PROTS)
    def mprotect_near_heap(self, page: int, npages: int, prot: int) -> None:
        self.both("mprotect", self.heap_page(page), npages * P, prot)  # type: ignore[attr-defined]

    @rule(page=HEAP_PAGES, write=st.booleans())
    def touch_heap(self, page: int, write: bool) -> None:
        self.both("touch", self.heap_page(page) + 8, write)  # type: ignore[attr-defined]
