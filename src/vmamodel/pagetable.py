"""What the page tables hold that the VMA layer can observe: guard markers (MADV_GUARD_INSTALL),
which pages were faulted in, and which of those hold a private anonymous page (written), as
opposed to the shared zero page a read fault maps. Page contents are not modelled.

Each kind of page is a :class:`PageSet`: page addresses grouped by the 2 MiB block one last-
level page table covers (a PMD entry's span on x86-64), with the blocks' numbers kept sorted,
so that a zap or a move finds the pages of its range without looking at the others, as the
kernel's page-table walk only visits the tables under the range."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Final

from vmamodel.constants import PAGE_SIZE

#: log2 of the bytes one block (one page table: 512 PTEs) covers
BLOCK_SHIFT: Final = 21
BLOCK_SIZE: Final = 1 << BLOCK_SHIFT


class PageSet:
    """A set of page addresses that finds, removes and moves the pages of a range in time
    proportional to the pages there (plus a binary search), not to all the pages it holds.
    It compares equal to a ``set`` of the same addresses."""

    __slots__ = ("_blocks", "_keys", "_len")

    def __init__(self, pages: Iterable[int] = ()) -> None:
        #: block number (address >> BLOCK_SHIFT) -> the pages of that block
        self._blocks: dict[int, set[int]] = {}
        #: the block numbers of ``_blocks``, sorted
        self._keys: list[int] = []
        self._len = 0
        self.update(pages)

    # -- one page -------------------------------------------------------------------------

    def __contains__(self, page: object) -> bool:
        if not isinstance(page, int):
            return False
        block = self._blocks.get(page >> BLOCK_SHIFT)
        return block is not None and page in block

    def add(self, page: int) -> None:
        key = page >> BLOCK_SHIFT
        block = self._blocks.get(key)
        if block is None:
            self._blocks[key] = {page}
            insort(self._keys, key)
            self._len += 1
        elif page not in block:
            block.add(page)
            self._len += 1

    def discard(self, page: int) -> None:
        key = page >> BLOCK_SHIFT
        block = self._blocks.get(key)
        if block is None or page not in block:
            return
        block.discard(page)
        self._len -= 1
        if not block:
            del self._blocks[key]
            del self._keys[bisect_left(self._keys, key)]

    def update(self, pages: Iterable[int]) -> None:
        if isinstance(pages, range) and pages.step == PAGE_SIZE and not pages.start % PAGE_SIZE:
            self._add_range(pages.start, pages.stop)  # a populate's pages: a block at a time
            return
        for page in pages:
            self.add(page)

    def _add_range(self, start: int, end: int) -> None:
        """Add the pages start, start + PAGE_SIZE, ... below ``end`` (start page-aligned)."""
        while start < end:
            key = start >> BLOCK_SHIFT
            stop = min(end, (key + 1) << BLOCK_SHIFT)
            block = self._blocks.get(key)
            if block is None:
                block = self._blocks[key] = set()
                insort(self._keys, key)
            before = len(block)
            block.update(range(start, stop, PAGE_SIZE))
            self._len += len(block) - before
            start = stop

    def difference_update(self, pages: Iterable[int]) -> None:
        for page in pages:
            self.discard(page)

    # -- ranges ---------------------------------------------------------------------------

    def _span(self, start: int, end: int) -> tuple[int, int]:
        """The positions in ``_keys`` of the blocks that [start, end) touches."""
        keys = self._keys
        lo = bisect_left(keys, start >> BLOCK_SHIFT)
        hi = bisect_left(keys, ((end - 1) >> BLOCK_SHIFT) + 1)
        return lo, hi

    def first_in(self, start: int, end: int) -> int | None:
        """The lowest page in [start, end), or None."""
        if not self._len or end <= start:
            return None
        lo, hi = self._span(start, end)
        for key in self._keys[lo:hi]:
            found = [page for page in self._blocks[key] if start <= page < end]
            if found:
                return min(found)
        return None

    def pages_in(self, start: int, end: int) -> list[int]:
        """The pages in [start, end), in address order."""
        if not self._len or end <= start:
            return []
        lo, hi = self._span(start, end)
        out: list[int] = []
        for key in self._keys[lo:hi]:
            out.extend(sorted(page for page in self._blocks[key] if start <= page < end))
        return out

    def remove_range(self, start: int, end: int) -> None:
        """Drop the pages in [start, end)."""
        self._cut(start, end, None)

    def take_range(self, start: int, end: int) -> list[int]:
        """Drop the pages in [start, end) and return them (in no particular order)."""
        taken: list[int] = []
        self._cut(start, end, taken)
        return taken

    def _cut(self, start: int, end: int, taken: list[int] | None) -> None:
        if not self._len or end <= start:
            return
        first_key = start >> BLOCK_SHIFT
        last_key = (end - 1) >> BLOCK_SHIFT
        if first_key == last_key:  # most ranges lie in one block: no search
            block = self._blocks.get(first_key)
            if block is not None:
                self._cut_block(first_key, block, start, end, taken)
            return
        keys = self._keys
        lo = bisect_left(keys, first_key)
        hi = bisect_left(keys, last_key + 1)
        blocks = self._blocks
        for key in keys[lo:hi]:
            self._cut_block(key, blocks[key], start, end, taken)

    def _cut_block(
        self, key: int, block: set[int], start: int, end: int, taken: list[int] | None
    ) -> None:
        """Drop the pages of [start, end) from one block: the fewer of the range's pages and
        the block's pages are looked at."""
        first = key << BLOCK_SHIFT
        lo = max(start, first)
        hi = min(end, first + BLOCK_SIZE)
        if lo == first and hi == first + BLOCK_SIZE:
            gone: Iterable[int] = block
            count = len(block)
            block_left = False
        else:
            if (hi - lo) // PAGE_SIZE < len(block):
                found = [page for page in range(lo, hi, PAGE_SIZE) if page in block]
            else:
                found = [page for page in block if lo <= page < hi]
            if not found:
                return
            block.difference_update(found)
            gone, count, block_left = found, len(found), bool(block)
        self._len -= count
        if not block_left:
            del self._blocks[key]
            del self._keys[bisect_left(self._keys, key)]
        if taken is not None:
            taken.extend(gone)

    def move(self, old: int, new: int, length: int) -> None:
        """The pages of [old, old+length) to the same offsets from ``new``."""
        if not self._len:
            return
        taken: list[int] = []
        self._cut(old, old + length, taken)
        if taken:
            delta = new - old
            for page in taken:
                self.add(page + delta)

    # -- the set protocol the rest of the model and the tests use ------------------------

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[int]:
        """The pages in no particular order (as a set's), at a set's speed."""
        return chain.from_iterable(list(self._blocks.values()))

    def copy(self) -> PageSet:
        other = PageSet()
        other._blocks = {key: set(block) for key, block in self._blocks.items()}
        other._keys = list(self._keys)
        other._len = self._len
        return other

    def __ior__(self, pages: Iterable[int]) -> PageSet:
        self.update(pages)
        return self

    def _as_set(self, other: object) -> set[int] | None:
        if isinstance(other, PageSet):
            return set(other)
        if isinstance(other, (set, frozenset)):
            return set(other)
        return None

    def __eq__(self, other: object) -> bool:
        theirs = self._as_set(other)
        if theirs is None:
            return NotImplemented
        return len(theirs) == self._len and all(page in self for page in theirs)

    def __ne__(self, other: object) -> bool:
        theirs = self._as_set(other)
        if theirs is None:
            return NotImplemented
        return not (len(theirs) == self._len and all(page in self for page in theirs))

    def __le__(self, other: object) -> bool:
        theirs = self._as_set(other)
        if theirs is None:
            return NotImplemented
        return all(page in theirs for page in self)

    def __ge__(self, other: object) -> bool:
        theirs = self._as_set(other)
        if theirs is None:
            return NotImplemented
        return all(page in self for page in theirs)

    __hash__ = None  # type: ignore[assignment]  # mutable, like set

    def __repr__(self) -> str:
        return f"PageSet({[hex(page) for page in sorted(self)]})"


class PageTable:
    """Per-address-space page state, keyed by page address."""

    __slots__ = ("anon", "guards", "present")

    def __init__(self) -> None:
        self.guards = PageSet()
        self.present = PageSet()
        self.anon = PageSet()

    def zap(self, start: int, end: int, keep_guards: bool = False) -> None:
        """zap_page_range(): drop the pages of [start, end); munmap drops guard markers too.
        An empty set, or a range inside one page table where a set has no page, is skipped
        without a call (most ranges of a replay hold no page)."""
        present = self.present
        anon = self.anon
        if (present._len or anon._len) and end > start:
            key = start >> BLOCK_SHIFT
            if key == (end - 1) >> BLOCK_SHIFT:  # one block: PageSet._cut's first case, inline
                if present._len:
                    block = present._blocks.get(key)
                    if block is not None:
                        present._cut_block(key, block, start, end, None)
                if anon._len:
                    block = anon._blocks.get(key)
                    if block is not None:
                        anon._cut_block(key, block, start, end, None)
            else:
                if present._len:
                    present._cut(start, end, None)
                if anon._len:
                    anon._cut(start, end, None)
        if not keep_guards:
            guards = self.guards
            if guards._len:
                guards._cut(start, end, None)

    def is_guard(self, addr: int) -> bool:
        guards = self.guards
        return guards._len > 0 and (addr & ~(PAGE_SIZE - 1)) in guards

    def move(self, old: int, new: int, length: int) -> None:
        """move_page_tables(): pages and markers follow an mremap move. A set with no page
        in the block of a one-block range is skipped without a call."""
        present, anon, guards = self.present, self.anon, self.guards
        if not (present._len or anon._len or guards._len):
            return
        key = old >> BLOCK_SHIFT
        one_block = key == (old + length - 1) >> BLOCK_SHIFT
        for pages in (present, anon, guards):
            if pages._len and (not one_block or key in pages._blocks):
                pages.move(old, new, length)

    def copy(self) -> PageTable:
        table = PageTable()
        table.guards = self.guards.copy()
        table.present = self.present.copy()
        table.anon = self.anon.copy()
        return table
