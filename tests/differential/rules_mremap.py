"""Hypothesis rules that add mremap(2) to a differential machine: shrink, grow (in place,
across VMA ends and holes), MREMAP_FIXED moves and resizes inside the window (one VMA or
several), MREMAP_DONTUNMAP with a fixed target or a free hint, old_len 0, and the argument
errors. Mix into a DifferentialMachine (see test_mremap_machine.py).

The host refuses a kernel-chosen address outside its arena, and the kernel chooses one for
every move without MREMAP_FIXED except MREMAP_DONTUNMAP with a free hint; so MREMAP_MAYMOVE
alone is only passed when the model says the call grows in place (where the flag does not
matter), and a DONTUNMAP hint only when the model says it is free. The arguments are built by
vmamodel.fuzz.generate (mremap_*_args), which ``vmamodel fuzz`` shares.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from vmamodel.fuzz import generate as gen

from .machine import PAGES, P, at

OLD_PAGES = st.integers(*gen.OLD_PAGES)
NEW_PAGES = st.integers(*gen.NEW_PAGES)
LEN_SKEW = st.sampled_from(gen.LEN_SKEWS)
BAD_FLAGS = st.sampled_from(gen.BAD_MREMAP_FLAGS)
MODES = st.sampled_from(gen.MODES)
PICKS = st.integers(*gen.PICK_RANGE)
DESTS = st.integers(*gen.DEST_RANGE)


class MremapRules:
    """Rules for a machine with ``self.model`` (an AddressSpace) and ``self.both``."""

    model: Any
    both: Any

    @initialize(
        layout=st.lists(
            st.tuples(PAGES, st.integers(1, 8), st.sampled_from(gen.SETUP_PROTS)),
            min_size=1,
            max_size=4,
        )
    )
    def mremap_setup(self, layout: list[tuple[int, int, int]]) -> None:
        """Start with a few private anonymous mappings, so that most calls find a VMA."""
        for page, npages, prot in layout:
            self.both("mmap", at(page), npages * P, prot, gen.ANON_FIXED)

    @rule(
        mode=MODES,
        pick=PICKS,
        page=PAGES,
        old=OLD_PAGES,
        new=NEW_PAGES,
        old_skew=LEN_SKEW,
        new_skew=LEN_SKEW,
        maymove=st.booleans(),
        bad=BAD_FLAGS,
        addr_skew=st.sampled_from(gen.ADDR_SKEWS),
    )
    def mremap_resize(
        self, mode: int, pick: int, page: int, old: int, new: int, old_skew: int,
        new_skew: int, maymove: bool, bad: int, addr_skew: int,
    ) -> None:
        """Shrink, grow or keep the size in place (no new address)."""
        self.both("mremap", *gen.mremap_resize_args(
            self.model, mode, pick, page, old, new, old_skew, new_skew, maymove, bad, addr_skew))

    @rule(
        mode=MODES,
        pick=PICKS,
        page=PAGES,
        old=OLD_PAGES,
        new=NEW_PAGES,
        dest=DESTS,
        same=st.booleans(),
        dontunmap=st.booleans(),
        mismatch=st.sampled_from(gen.MISMATCH),
        maymove=st.sampled_from(gen.FIXED_MAYMOVE),
        dest_skew=st.sampled_from(gen.ADDR_SKEWS),
        new_skew=LEN_SKEW,
    )
    def mremap_fixed(
        self, mode: int, pick: int, page: int, old: int, new: int, dest: int, same: bool,
        dontunmap: bool, mismatch: bool, maymove: bool, dest_skew: int, new_skew: int,
    ) -> None:
        """MREMAP_FIXED to a target in the window: a move of one or several VMAs (same
        length), a resize and move, or MREMAP_DONTUNMAP."""
        self.both("mremap", *gen.mremap_fixed_args(
            self.model, mode, pick, page, old, new, dest, same, dontunmap, mismatch, maymove,
            dest_skew, new_skew))

    @rule(mode=MODES, pick=PICKS, page=PAGES, npages=st.integers(1, 8), hint=DESTS)
    def mremap_dontunmap_hint(
        self, mode: int, pick: int, page: int, npages: int, hint: int
    ) -> None:
        """MREMAP_DONTUNMAP without MREMAP_FIXED: new_addr is a hint; a free one is taken."""
        self.both("mremap", *gen.mremap_dontunmap_hint_args(
            self.model, mode, pick, page, npages, hint))
