"""The set of VMAs of one address space, in address order: the model's maple tree.

Everything that looks VMAs up by address goes through :class:`VmaTree`, so the structure can
change (for speed) without touching the rules. VMAs never overlap, so changing a VMA's range
in place keeps the order; only insertion and removal restructure the tree.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmamodel.vma import Vma


def _start(vma: Vma) -> int:
    return vma.vm_start


class VmaTree:
    """Sorted VMAs with the lookups of include/linux/mm.h (find_vma, vma_find, ...)."""

    __slots__ = ("_vmas",)

    def __init__(self) -> None:
        self._vmas: list[Vma] = []

    def __len__(self) -> int:
        return len(self._vmas)

    def __iter__(self) -> Iterator[Vma]:
        return iter(self._vmas)

    def _index_at_or_before(self, addr: int) -> int:
        """Index of the last VMA with vm_start <= addr, or -1."""
        return bisect_right(self._vmas, addr, key=_start) - 1

    def _index_of(self, vma: Vma) -> int:
        idx = self._index_at_or_before(vma.vm_start)
        if idx < 0 or self._vmas[idx] is not vma:
            raise KeyError(f"{vma!r} is not in the tree")
        return idx

    def find(self, addr: int) -> Vma | None:
        """find_vma(): the first VMA with vm_end > addr."""
        vmas = self._vmas
        idx = self._index_at_or_before(addr)
        if idx >= 0 and vmas[idx].vm_end > addr:
            return vmas[idx]
        idx += 1
        return vmas[idx] if idx < len(vmas) else None

    def lookup(self, addr: int) -> Vma | None:
        """vma_lookup(): the VMA containing addr."""
        idx = self._index_at_or_before(addr)
        if idx >= 0 and self._vmas[idx].vm_end > addr:
            return self._vmas[idx]
        return None

    def find_intersection(self, start: int, end: int) -> Vma | None:
        """find_vma_intersection(): the first VMA overlapping [start, end)."""
        vma = self.find(start)
        if vma is not None and vma.vm_start < end:
            return vma
        return None

    def find_prev(self, addr: int) -> tuple[Vma | None, Vma | None]:
        """find_vma_prev(): (first VMA with vm_end > addr, the VMA before it)."""
        vmas = self._vmas
        idx = self._index_at_or_before(addr)
        if idx >= 0 and vmas[idx].vm_end > addr:
            return vmas[idx], vmas[idx - 1] if idx > 0 else None
        nxt = vmas[idx + 1] if idx + 1 < len(vmas) else None
        return nxt, vmas[idx] if idx >= 0 else None

    def prev_of(self, vma: Vma) -> Vma | None:
        idx = self._index_of(vma)
        return self._vmas[idx - 1] if idx > 0 else None

    def next_of(self, vma: Vma) -> Vma | None:
        idx = self._index_of(vma) + 1
        return self._vmas[idx] if idx < len(self._vmas) else None

    def prev_before(self, addr: int) -> Vma | None:
        """The last VMA that ends at or before addr (for a gap starting at addr)."""
        idx = self._index_at_or_before(addr)
        if idx >= 0 and self._vmas[idx].vm_end > addr:
            idx -= 1
        return self._vmas[idx] if idx >= 0 else None

    def next_from(self, addr: int) -> Vma | None:
        """The first VMA that starts at or after addr."""
        idx = self._index_at_or_before(addr)
        if idx >= 0 and self._vmas[idx].vm_start == addr:
            return self._vmas[idx]
        idx += 1
        return self._vmas[idx] if idx < len(self._vmas) else None

    def range(self, start: int, end: int) -> list[Vma]:
        """Every VMA overlapping [start, end), in order (for_each_vma_range)."""
        vmas = self._vmas
        idx = self._index_at_or_before(start)
        if idx < 0 or vmas[idx].vm_end <= start:
            idx += 1
        out: list[Vma] = []
        while idx < len(vmas) and vmas[idx].vm_start < end:
            out.append(vmas[idx])
            idx += 1
        return out

    def insert(self, vma: Vma) -> None:
        """vma_iter_store_new(): the range must be free."""
        idx = self._index_at_or_before(vma.vm_start) + 1
        vmas = self._vmas
        if idx > 0 and vmas[idx - 1].vm_end > vma.vm_start:
            raise AssertionError(f"{vma!r} overlaps {vmas[idx - 1]!r}")
        if idx < len(vmas) and vmas[idx].vm_start < vma.vm_end:
            raise AssertionError(f"{vma!r} overlaps {vmas[idx]!r}")
        vmas.insert(idx, vma)

    def remove(self, vma: Vma) -> None:
        del self._vmas[self._index_of(vma)]

    def set_range(self, vma: Vma, start: int, end: int, pgoff: int) -> None:
        """vma_set_range(): callers guarantee the new range overlaps no other VMA."""
        vma.vm_start = start
        vma.vm_end = end
        vma.vm_pgoff = pgoff

    def gaps_topdown(self, low: int, high: int) -> Iterator[tuple[int, int, Vma | None]]:
        """Free gaps [gap_start, gap_end) inside [low, high), highest first, each with the VMA
        that follows it (whose start gap may shrink it)."""
        vmas = self._vmas
        idx = bisect_left(vmas, high, key=_start)
        following = vmas[idx] if idx < len(vmas) else None
        gap_end = high
        i = idx - 1
        while gap_end > low:
            prev = vmas[i] if i >= 0 else None
            gap_start = prev.vm_end if prev is not None else 0
            if gap_start < gap_end:
                yield max(gap_start, low), gap_end, following
            if prev is None:
                return
            following = prev
            gap_end = min(gap_end, prev.vm_start)
            i -= 1

    def gaps_bottomup(self, low: int, high: int) -> Iterator[tuple[int, int, Vma | None]]:
        """Free gaps inside [low, high), lowest first, each with the VMA that follows it."""
        vmas = self._vmas
        idx = self._index_at_or_before(low)
        gap_start = low
        if idx >= 0:
            gap_start = max(low, vmas[idx].vm_end)
        idx += 1
        while gap_start < high:
            following = vmas[idx] if idx < len(vmas) else None
            gap_end = high if following is None else min(high, following.vm_start)
            if gap_end > gap_start:
                yield gap_start, gap_end, following
            if following is None:
                return
            gap_start = max(gap_start, following.vm_end)
            idx += 1
