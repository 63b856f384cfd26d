"""Hypothesis rules that add mremap(2) to a differential machine: shrink, grow (in place,
across VMA ends and holes), MREMAP_FIXED moves and resizes inside the window (one VMA or
several), MREMAP_DONTUNMAP with a fixed target or a free hint, old_len 0, and the argument
errors. Mix into a DifferentialMachine (see test_mremap_machine.py).

The host refuses a kernel-chosen address outside its arena, and the kernel chooses one for
every move without MREMAP_FIXED except MREMAP_DONTUNMAP with a free hint; so MREMAP_MAYMOVE
alone is only passed when the model says the call grows in place (where the flag does not
matter), and a DONTUNMAP hint only when the model says it is free.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

import vmamodel as v
from core.util import at
from vmamodel.unmapped_area import vm_start_gap

from .machine import PAGES, WINDOW, P

M, F, D = v.MREMAP_MAYMOVE, v.MREMAP_FIXED, v.MREMAP_DONTUNMAP
RW = v.PROT_READ | v.PROT_WRITE
ANON_FIXED = v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED
OLD_PAGES = st.integers(0, 10)
NEW_PAGES = st.integers(1, 10)
#: Byte skews of a length: most calls are page multiples; some round up; 0 stays 0.
LEN_SKEW = st.sampled_from([0, 0, 0, 0, 1, P - 1])
#: Flag bits mremap does not know (8) make EINVAL; most calls use none.
BAD_FLAGS = st.sampled_from([0] * 12 + [8, 0x40])
#: How an old range is chosen (see MremapRules.spot): 0 whole VMA, 1 VMA tail, 2 from a
#: VMA's start, 3 anywhere.
MODES = st.sampled_from([0, 0, 1, 1, 2, 2, 3])
PICKS = st.integers(0, 1 << 16)


def _aligned(nbytes: int) -> int:
    return (nbytes + P - 1) & ~(P - 1)


class MremapRules:
    """Rules for a machine with ``self.model`` (an AddressSpace) and ``self.both``."""

    model: Any
    both: Any

    def grows_in_place(self, addr: int, old_len: int, new_len: int) -> bool:
        """What expand_vma() decides, read from the model: the range ends at its VMA's end
        and the pages after it are free."""
        vma = self.model.find_vma(addr)
        old_len, new_len = _aligned(old_len), _aligned(new_len)
        if vma is None or vma.vm_start > addr or new_len <= old_len:
            return False
        end = vma.vm_end + new_len - old_len
        after = self.model.find_vma(vma.vm_end)
        return vma.vm_end - addr == old_len and (after is None or after.vm_start >= end)

    def hint_is_free(self, hint: int, length: int) -> bool:
        """The hint range is free, short of the guard gap below a stack (_hint_fits)."""
        vma = self.model.find_vma(hint)
        return vma is None or vm_start_gap(self.model, vma) >= hint + _aligned(length)

    @initialize(
        layout=st.lists(
            st.tuples(PAGES, st.integers(1, 8), st.sampled_from([v.PROT_READ, RW])),
            min_size=1,
            max_size=4,
        )
    )
    def mremap_setup(self, layout: list[tuple[int, int, int]]) -> None:
        """Start with a few private anonymous mappings, so that most calls find a VMA."""
        for page, npages, prot in layout:
            self.both("mmap", at(page), npages * P, prot, ANON_FIXED)

    def spot(self, mode: int, pick: int, page: int, old: int) -> tuple[int, int]:
        """(first page, pages) of an old range: mostly drawn from the model's VMAs (a whole
        VMA, a tail ending at the VMA's end, or a range starting at a VMA that may run past
        it), sometimes anywhere in the window."""
        views = [view for view in self.model.vmas() if at(0) <= view.vm_start < at(WINDOW)]
        if mode == 3 or not views:
            return page, old
        view = views[pick % len(views)]
        first, last = (view.vm_start - at(0)) // P, (view.vm_end - at(0)) // P
        if mode == 0:
            return first, last - first
        if mode == 1:
            start = first + pick // 7 % (last - first)
            return start, last - start
        return first, old

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
        addr_skew=st.sampled_from([0] * 15 + [1]),
    )
    def mremap_resize(
        self, mode: int, pick: int, page: int, old: int, new: int, old_skew: int,
        new_skew: int, maymove: bool, bad: int, addr_skew: int,
    ) -> None:
        """Shrink, grow or keep the size in place (no new address)."""
        page, old = self.spot(mode, pick, page, old)
        old_len, new_len = old * P + old_skew, new * P + new_skew
        flags = bad
        if maymove and self.grows_in_place(at(page), old_len, new_len):
            flags |= M
        self.both("mremap", at(page) + addr_skew, old_len, new_len, flags, 0)

    @rule(
        mode=MODES,
        pick=PICKS,
        page=PAGES,
        old=OLD_PAGES,
        new=NEW_PAGES,
        dest=st.integers(0, WINDOW),
        same=st.booleans(),
        dontunmap=st.booleans(),
        mismatch=st.sampled_from([False] * 7 + [True]),
        maymove=st.sampled_from([True] * 9 + [False]),
        dest_skew=st.sampled_from([0] * 15 + [1]),
        new_skew=LEN_SKEW,
    )
    def mremap_fixed(
        self, mode: int, pick: int, page: int, old: int, new: int, dest: int, same: bool,
        dontunmap: bool, mismatch: bool, maymove: bool, dest_skew: int, new_skew: int,
    ) -> None:
        """MREMAP_FIXED to a target in the window: a move of one or several VMAs (same
        length), a resize and move, or MREMAP_DONTUNMAP."""
        page, old = self.spot(mode, pick, page, old)
        if same or (dontunmap and not mismatch):
            new = old or 1
        flags = F | (M if maymove else 0) | (D if dontunmap else 0)
        self.both("mremap", at(page), old * P, new * P + new_skew, flags, at(dest) + dest_skew)

    @rule(
        mode=MODES, pick=PICKS, page=PAGES, npages=st.integers(1, 8), hint=st.integers(0, WINDOW)
    )
    def mremap_dontunmap_hint(
        self, mode: int, pick: int, page: int, npages: int, hint: int
    ) -> None:
        """MREMAP_DONTUNMAP without MREMAP_FIXED: new_addr is a hint; a free one is taken."""
        page, npages = self.spot(mode, pick, page, npages)
        length = max(npages, 1) * P
        flags = M | D
        if not self.hint_is_free(at(hint), length):
            flags |= F
        self.both("mremap", at(page), length, length, flags, at(hint))
