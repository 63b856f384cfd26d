"""The set of VMAs of one address space, in address order: the model's maple tree.

Everything that looks VMAs up by address goes through :class:`VmaTree`, so the structure can
change (for speed) without touching the rules. VMAs never overlap, so changing a VMA's range
in place keeps the order; only insertion and removal restructure the tree.

Layout (a blocked sorted list, in the manner of sortedcontainers): the VMAs sit in blocks of
``load // 2`` to ``2 * load`` entries, so an insertion moves at most one block's pointers.
Lookups are two bisections: over the blocks' first addresses, then inside one block. Compiled,
the first addresses are a vec of native ints (librt's, mypyc's runtime library) and the search
inside a block reads first where an even spread of its VMAs would put the address (_guess):
at a million VMAs each read of a VMA is likely a cache miss.

The gap index, the model's form of the maple tree's gap tracking (the largest free gap below
each node, which ``mas_empty_area()`` and ``mas_empty_area_rev()`` descend by), has three
levels: beside each VMA the free gap below it (its start minus the end of the VMA before it,
counted in pages); per block the largest of its gaps; per *group* of ``fanout // 4`` to
``2 * fanout`` consecutive blocks the largest of those, with a max-tree of 16 children a node
(as a maple node has 16 slots) over the groups. A group is named by the first address of its
first block, so that splitting or joining blocks inside it moves no other group: an update is
a bisection and a climb of the max-tree (O(log n)); only a group split or join, once per
``fanout`` block splits or so, rebuilds the max-tree over the groups. A search climbs from
the limit to the first node that has a gap long enough and descends its last (or first) such
child down to a group, a block and a gap; a node is searched from the place of its largest
value (see _last_from_top), by C loops in pure Python and native loops when compiled.

Three things spare the common calls work without changing an answer, each checked by
:meth:`VmaTree.validate`: per block the number of gaps equal to its largest (a shrinking
largest rescans the block only when it was the last of its size); the position a gap search
or find_prev leaves, which the next insert tries before searching (as the kernel's store
reuses the walk's iterator); and what the last top-down search learnt (the block its climb
ended in; that block's only largest gap and a bound on the others), kept while no change
could make it false: a placed mmap and its munmap then scan no block.

Whoever changes ``vm_start`` or ``vm_end`` of a VMA in the tree must do it through
:meth:`VmaTree.set_range`: the index is only as good as what it is told. :meth:`validate`
checks it (``AddressSpace.validate_mm`` calls it in debug mode).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Final, cast

from vmamodel.constants import PAGE_SHIFT

if TYPE_CHECKING:
    from mypy_extensions import i64

    from vmamodel.vma import Vma

#: A block holds load // 2 .. 2 * load VMAs after a split (fewer only while shrinking): small
#: enough that rescanning one block's gaps is cheap, large enough that there are few blocks.
#: Constants are Final (so compiled reads are native); the tests pass smaller sizes to VmaTree.
_LOAD: Final = 64
#: A group holds fanout // 4 .. 2 * fanout blocks (fewer only when it is the only group).
_FANOUT: Final = 16
#: Distinct vm_flags values shared between VMAs (see insert); past this many, stop sharing.
_FLAG_VALUES: Final = 4096
#: Ranges this short are searched one by one rather than halved (see _last_at_least).
_SCAN: Final = 8
#: Children of a node of the max-tree over the groups (a power of two: _NODE_SHIFT bits).
_NODE_SHIFT: Final = 4
_NODE: Final = 1 << _NODE_SHIFT
#: The largest block start a vec holds (an address past it may be searched, never stored).
_I64_MAX: Final = (1 << 63) - 1

_start = attrgetter("vm_start")

Gap = tuple[int, int, "Vma | None"]

#: True when this module runs compiled by mypyc (setup.py). Searching a block then reads
#: vm_start straight from each Vma in a loop of native code, over twice as fast as bisect's
#: key function (whose every call boxes an int); in pure Python, bisect in C is the faster.
_NATIVE: Final = not __file__.endswith(".py")

if _NATIVE:
    # The compiled build keeps the blocks' first addresses in a vec of native ints (mypyc's
    # runtime library, librt): one contiguous array, as a maple node keeps its pivots
    # inline, so a search over 15,000 blocks reads a few cache lines of it instead of a list
    # slot and a separate int object at each probe (docs/speed.md, round 7).
    from librt.vecs import append as _vec_append
    from librt.vecs import extend as _vec_extend
    from librt.vecs import pop as _vec_pop
    from librt.vecs import vec


def _guess(blk: list[Vma], addr: int, mins: vec[i64], b: int) -> int:
    """Where ``addr`` would fall in block b if its VMAs were evenly spread between the
    block's first address and the next block's (the last block: its last VMA's end), from
    the block starts alone: an index to probe first, or -1.

    A probe reads a VMA that is, in a space of a million VMAs, seldom in the cache; a block
    of evenly spaced mappings (an allocator's arenas, thread stacks, a runtime's heap
    regions) is then searched in two reads instead of seven, and any other block in at most
    two more than bisection's."""
    n = len(blk)
    first: int = mins[b]
    limit: int = mins[b + 1] if b + 1 < len(mins) else blk[n - 1].vm_end
    if not first <= addr < limit:
        return -1
    return (addr - first) * n // (limit - first)


def _right(blk: list[Vma], addr: int, mins: vec[i64], b: int) -> int:
    """bisect_right(blk, addr, key=vm_start), for the compiled build, of block b: the
    guessed place (see _guess) and its neighbour first."""
    lo, hi = 0, len(blk)
    g = _guess(blk, addr, mins, b)
    if g >= 0:
        if addr < blk[g].vm_start:
            if g == 0 or addr >= blk[g - 1].vm_start:
                return g
            hi = g - 1
        else:
            g += 1
            if g == hi or addr < blk[g].vm_start:
                return g
            lo = g + 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if addr < blk[mid].vm_start:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _left(blk: list[Vma], addr: int, mins: vec[i64], b: int) -> int:
    """bisect_left(blk, addr, key=vm_start), for the compiled build (see _right)."""
    lo, hi = 0, len(blk)
    g = _guess(blk, addr, mins, b)
    if g >= 0:
        if blk[g].vm_start < addr:
            g += 1
            if g == hi or blk[g].vm_start >= addr:
                return g
            lo = g + 1
        else:
            if g == 0 or blk[g - 1].vm_start < addr:
                return g
            hi = g - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if blk[mid].vm_start < addr:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _right_int(values: vec[i64], addr: int) -> int:
    """bisect_right(values, addr), for the compiled build: native compares over a native
    array, where bisect's C loop over a list calls the generic rich comparison of two int
    objects (it counts on the 14 probes of 1,000,000 VMAs' block starts)."""
    if not -_I64_MAX <= addr <= _I64_MAX:  # a vec item is an i64; an address may not be
        return 0 if addr < 0 else len(values)
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) >> 1
        if addr < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _left_int(values: vec[i64], addr: int) -> int:
    """bisect_left(values, addr), for the compiled build (see _right_int)."""
    if not -_I64_MAX <= addr <= _I64_MAX:
        return 0 if addr < 0 else len(values)
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < addr:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _keys_left(keys: vec[i64], addr: int) -> int:
    """bisect_left() of the block starts, in either build."""
    return _left_int(keys, addr) if _NATIVE else bisect_left(keys, addr)


def _new_keys() -> vec[i64]:
    """An empty list of block starts: a vec compiled, a list in pure Python (where bisect's
    C loop over a list is the fastest search, and librt is not a dependency)."""
    if _NATIVE:
        return vec[i64]()
    return cast("vec[i64]", [])


def _keys_insert(keys: vec[i64], i: int, addr: int) -> vec[i64]:
    """keys.insert(i, addr): the same list in pure Python, a new vec compiled (a vec has no
    insert, and grows by append, which may move it)."""
    if not _NATIVE:
        cast("list[int]", keys).insert(i, addr)
        return keys
    # Two slices copied whole: twice as fast as moving the tail one item at a time.
    return _vec_extend(_vec_append(keys[:i], addr), keys[i:])


def _keys_delete(keys: vec[i64], i: int) -> vec[i64]:
    """del keys[i] (see _keys_insert)."""
    if not _NATIVE:
        del cast("list[int]", keys)[i]
        return keys
    return _vec_pop(keys, i)[0]


# The searches of a node's entries. Pure Python runs them as loops in C: max() over slices
# and list/array.index(). Compiled, a native loop over a list of ints beats calls into those,
# so the lists (block, group and max-tree maxima) are scanned as the kernel scans a node; the
# gaps stay with the C loops, as every array read boxes an int either way.


def _max_of(values: list[int], lo: int, hi: int) -> int:
    """max(values[lo:hi]) of a non-empty range."""
    if not _NATIVE:
        return max(values[lo:hi])
    top = values[lo]
    for i in range(lo + 1, hi):
        if values[i] > top:
            top = values[i]
    return top


def _scan_last(values: list[int], lo: int, hi: int, length: int) -> int:
    for i in range(hi - 1, lo - 1, -1):
        if values[i] >= length:
            return i
    return -1


def _scan_first(values: list[int], lo: int, hi: int, length: int) -> int:
    for i in range(lo, hi):
        if values[i] >= length:
            return i
    return -1


def _last_at_least(values: list[int], lo: int, hi: int, length: int) -> int:
    """The last index in [lo, hi) whose value is >= length, or -1."""
    if _NATIVE or hi - lo <= _SCAN:
        return _scan_last(values, lo, hi, length)
    if max(values[lo:hi]) < length:
        return -1
    return _last_index_at_least(values, lo, hi, length)


def _first_at_least(values: list[int], lo: int, hi: int, length: int) -> int:
    """The first index in [lo, hi) whose value is >= length, or -1."""
    if _NATIVE or hi - lo <= _SCAN:
        return _scan_first(values, lo, hi, length)
    if max(values[lo:hi]) < length:
        return -1
    return _first_index_at_least(values, lo, hi, length)


def _last_gap(gaps: array[int], lo: int, hi: int, length: int) -> int:
    """The last index in [lo, hi) whose gap is >= length, or -1."""
    if hi <= lo or max(gaps[lo:hi]) < length:
        return -1
    return _last_index_at_least(gaps, lo, hi, length)


def _first_gap(gaps: array[int], lo: int, hi: int, length: int) -> int:
    """The first index in [lo, hi) whose gap is >= length, or -1."""
    if hi <= lo or max(gaps[lo:hi]) < length:
        return -1
    return _first_index_at_least(gaps, lo, hi, length)


def _last_from_top(values: Sequence[int], lo: int, hi: int, length: int, top: int) -> int:
    """The last index in [lo, hi) whose value is >= length, where ``top`` (>= length) is
    the largest value there: the first place of the largest, unless a later one fits too.
    Top-down placement fills the space above its largest gap, so that is the usual answer."""
    m = values.index(top, lo, hi)
    if m + 1 < hi and max(values[m + 1:hi]) >= length:
        return _last_index_at_least(values, m + 1, hi, length)
    return m


def _first_from_top(values: Sequence[int], lo: int, hi: int, length: int, top: int) -> int:
    """The first index in [lo, hi) whose value is >= length (as _last_from_top)."""
    m = values.index(top, lo, hi)
    if m > lo and max(values[lo:m]) >= length:
        return _first_index_at_least(values, lo, m, length)
    return m


def _last_index_at_least(values: Sequence[int], lo: int, hi: int, length: int) -> int:
    """The last index in [lo, hi) whose value is >= length, where one is known to be: the
    range halved with max() over slices, then a short scan."""
    while hi - lo > _SCAN:
        mid = (lo + hi) >> 1
        if max(values[mid:hi]) >= length:
            lo = mid
        else:
            hi = mid
    i = hi - 1
    while values[i] < length:
        i -= 1
    return i


def _first_index_at_least(values: Sequence[int], lo: int, hi: int, length: int) -> int:
    """The first index in [lo, hi) whose value is >= length, where one is known to be."""
    while hi - lo > _SCAN:
        mid = (lo + hi) >> 1
        if max(values[lo:mid]) >= length:
            hi = mid
        else:
            lo = mid
    while values[lo] < length:
        lo += 1
    return lo


class VmaTree:
    """Sorted VMAs with the lookups of include/linux/mm.h (find_vma, vma_find, ...) and the
    gap searches of the maple tree (mas_empty_area, mas_empty_area_rev)."""

    __slots__ = (
        "_bcnt", "_blocks", "_bmax", "_fanout", "_flags", "_gaps", "_gkeys", "_gmax", "_gmin",
        "_hb", "_hj", "_kb", "_kg", "_krest", "_len", "_levels", "_load", "_min_block", "_mins",
        "_rb", "_rest", "_rj", "_sb", "_shift", "_sr", "_su", "_unit",
    )

    def __init__(self, load: int = _LOAD, fanout: int = _FANOUT, shift: int = PAGE_SHIFT) -> None:
        """``load`` and ``fanout`` size the blocks and the groups (see the module's
        docstring); the defaults are what the model runs with, smaller ones are for tests
        that want many splits and joins. VMA boundaries are multiples of ``1 << shift``
        (pages, as in the kernel), and the gaps are counted in those units: a gap of up to
        256 pages is then one of CPython's cached small ints, which reading it from the
        array does not allocate."""
        if load < 1 or fanout < 1 or shift < 0:
            raise ValueError(f"VmaTree sizes must be positive: load={load}, fanout={fanout},"
                             f" shift={shift}")
        self._shift = shift
        self._unit = 1 << shift
        self._load = load
        self._min_block = max(1, load // 4)
        self._fanout = fanout
        self._gmin = max(1, fanout // 4)
        self._blocks: list[list[Vma]] = []
        # _gaps[b][j]: free units between blocks[b][j] and the VMA before it (from 0 for
        # the first VMA). array('q') costs 8 bytes per VMA where a list of ints costs ~40.
        # The maxima below are in the same units.
        self._gaps: list[array[int]] = []
        self._mins = _new_keys()  # vm_start of each block's first VMA
        self._bmax: list[int] = []  # the largest gap of each block
        # How many gaps of each block equal its largest, or 0 when not counted yet (after a
        # split or a rescan; counted when that largest next shrinks): a shrinking largest gap
        # rescans the block only when it was the last of its size. In a space of equal gaps,
        # as the benchmark's, most shrinks are then O(1).
        self._bcnt: list[int] = []
        # The groups of blocks: _gkeys[g] is the first address of group g's first block (-1
        # for group 0, which so never changes key), _gmax[g] its largest gap.
        self._gkeys: list[int] = []
        self._gmax: list[int] = []
        # The max-tree over the groups, _NODE children a node as a maple node has slots:
        # _levels[0] is _gmax itself, _levels[d + 1][k] the largest of the k-th _NODE
        # entries of _levels[d], up to a level of at most _NODE entries. None until a gap
        # search needs it after the number of groups changed.
        self._levels: list[list[int]] | None = None
        self._len = 0
        self._flags: dict[int, int] = {}
        # Where the VMA last placed, removed or positioned sits (block, index), as the
        # vma_iterator of a kernel call stays where it last walked: the next VMA a call
        # updates is usually that one or its neighbour. Only a hint, checked by identity
        # before use.
        self._hb = 0
        self._hj = 0
        # What a top-down gap search learnt of the block it found the gap in: the gap at
        # (_rb, _rj) is the block's only largest, and no other gap there is larger than
        # _rest (-1: nothing known). An insert into that gap (the placed mmap's store) then
        # knows the block's new largest without rescanning it, and the removal of the VMA
        # above it (its munmap) keeps it true; the next search of that block needs no
        # scan. Any other change of that block's gaps, or of the blocks' numbers, forgets it.
        self._rb = 0
        self._rj = 0
        self._rest = -1
        # The last climb of a top-down search: from block _sb, the highest lower block with
        # a gap of _su units is _sr; true while no block between them gets such a gap (see
        # _set_bmax) and no block is added or taken away (_sb = -1 forgets it). Placed mmaps
        # search from the same block for the same length, and most other calls move no
        # block's largest gap up past it.
        self._sb = -1
        self._sr = 0
        self._su = 0
        # The search's bound kept per level, as _rest is per block: block _kb (in group _kg)
        # holds the largest gap of the whole tree, and every other block of its group and
        # every other child of each max-tree node above it is at most _krest. While so, a
        # change of _kb's largest to a value >= _krest sets its group's and each node's
        # maximum to that value without recomputing any (a placed mmap shrinks the lowest
        # block's largest, its munmap grows it back). _kb = -1: nothing known. Forgotten
        # when another block's largest passes _krest, or block or group numbers change.
        self._kb = -1
        self._kg = 0
        self._krest = 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Vma]:
        return chain.from_iterable(self._blocks)

    # -- positions ----------------------------------------------------------------------

    def _at_or_before(self, addr: int) -> tuple[int, int]:
        """(block, index) of the last VMA with vm_start <= addr; index -1 (in block 0) when
        there is none. The tree must not be empty."""
        mins = self._mins
        b = (_right_int(mins, addr) if _NATIVE else bisect_right(mins, addr)) - 1
        if b < 0:
            return 0, -1
        blk = self._blocks[b]
        j = _right(blk, addr, mins, b) if _NATIVE else bisect_right(blk, addr, key=_start)
        return b, j - 1

    def _first_at_or_after(self, addr: int) -> tuple[int, int]:
        """(block, index) of the first VMA with vm_start >= addr; (len(blocks), 0) when none."""
        mins = self._mins
        b = (_left_int(mins, addr) if _NATIVE else bisect_left(mins, addr)) - 1
        if b < 0:
            return 0, 0
        blk = self._blocks[b]
        j = _left(blk, addr, mins, b) if _NATIVE else bisect_left(blk, addr, key=_start)
        if j == len(blk):
            return b + 1, 0
        return b, j

    def _next_pos(self, b: int, j: int) -> tuple[int, int]:
        if j + 1 < len(self._blocks[b]):
            return b, j + 1
        return b + 1, 0

    def _vma_at(self, b: int, j: int) -> Vma | None:
        """The VMA at a position that may be one past the end (then None)."""
        blocks = self._blocks
        if b < len(blocks):
            return blocks[b][j]
        return None

    def _before(self, b: int, j: int) -> Vma | None:
        """The VMA before position (b, j), where j may be -1 or len(block)."""
        if j > 0:
            return self._blocks[b][j - 1]
        if b > 0:
            return self._blocks[b - 1][-1]
        return None

    def _position(self, vma: Vma) -> tuple[int, int] | None:
        blocks = self._blocks
        if not blocks:
            return None
        b = self._hb
        if b < len(blocks):
            blk = blocks[b]
            j = self._hj
            if j < len(blk) and blk[j] is vma:
                return b, j
            if 0 < j <= len(blk) and blk[j - 1] is vma:
                self._hj = j - 1
                return b, j - 1
            if j + 1 < len(blk) and blk[j + 1] is vma:
                self._hj = j + 1
                return b, j + 1
        b, j = self._at_or_before(vma.vm_start)
        if j < 0 or blocks[b][j] is not vma:
            return None
        self._hb = b
        self._hj = j
        return b, j

    def _index_of(self, vma: Vma) -> tuple[int, int]:
        pos = self._position(vma)
        if pos is None:
            raise KeyError(f"{vma!r} is not in the tree")
        return pos

    # -- lookups ------------------------------------------------------------------------

    def _at_position(self, addr: int) -> tuple[Vma, Vma | None] | None:
        """(the VMA at the tree's position, the one before it) when that VMA is the first
        with vm_end > addr, else None: where the last call left the position is often where
        the next one looks (munmap's find after the mmap that placed the VMA, the store
        after a gap search)."""
        blocks = self._blocks
        b = self._hb
        if b < len(blocks):
            blk = blocks[b]
            j = self._hj
            if j < len(blk):
                vma = blk[j]
                if vma.vm_end > addr:
                    if j:
                        prev = blk[j - 1]
                    elif b:
                        prev = blocks[b - 1][-1]
                    else:
                        return vma, None
                    if prev.vm_end <= addr:
                        return vma, prev
        return None

    def find(self, addr: int) -> Vma | None:
        """find_vma(): the first VMA with vm_end > addr. The tree's position (where the last
        call left it: munmap's find after the mmap that placed the VMA) is tried first."""
        here = self._at_position(addr)  # (None when the tree is empty)
        if here is not None:
            return here[0]
        blocks = self._blocks
        if not blocks:
            return None
        mins = self._mins
        b = (_right_int(mins, addr) if _NATIVE else bisect_right(mins, addr)) - 1
        if b < 0:
            return blocks[0][0]
        blk = blocks[b]
        j = (_right(blk, addr, mins, b) if _NATIVE else bisect_right(blk, addr, key=_start)) - 1
        vma = blk[j]
        if vma.vm_end > addr:
            return vma
        j += 1
        if j < len(blk):
            return blk[j]
        b += 1
        return blocks[b][0] if b < len(blocks) else None

    def lookup(self, addr: int) -> Vma | None:
        """vma_lookup(): the VMA containing addr."""
        blocks = self._blocks
        if not blocks:
            return None
        mins = self._mins
        b = (_right_int(mins, addr) if _NATIVE else bisect_right(mins, addr)) - 1
        if b < 0:
            return None
        blk = blocks[b]
        j = _right(blk, addr, mins, b) if _NATIVE else bisect_right(blk, addr, key=_start)
        vma = blk[j - 1]
        return vma if vma.vm_end > addr else None

    def find_intersection(self, start: int, end: int) -> Vma | None:
        """find_vma_intersection(): the first VMA overlapping [start, end)."""
        vma = self.find(start)
        if vma is not None and vma.vm_start < end:
            return vma
        return None

    def find_prev(self, addr: int) -> tuple[Vma | None, Vma | None]:
        """find_vma_prev(): (first VMA with vm_end > addr, the VMA before it). The tree's
        position is left at the first (vma_iter_next_rewind() leaves the iterator there,
        for the store of __mmap_new_vma()); the position a gap search or an earlier walk
        left is tried first."""
        here = self._at_position(addr)  # (None when the tree is empty)
        if here is not None:
            return here
        blocks = self._blocks
        if not blocks:
            return None, None
        b, j = self._at_or_before(addr)
        if j < 0:
            self._hb = self._hj = 0
            return blocks[0][0], None
        blk = blocks[b]
        vma = blk[j]
        if vma.vm_end > addr:
            self._hb, self._hj = b, j
            return vma, self._before(b, j)
        if j + 1 < len(blk):
            self._hb, self._hj = b, j + 1
            return blk[j + 1], vma
        self._hb, self._hj = b + 1, 0
        return (blocks[b + 1][0] if b + 1 < len(blocks) else None), vma

    def prev_of(self, vma: Vma) -> Vma | None:
        b, j = self._index_of(vma)
        return self._before(b, j)

    def next_of(self, vma: Vma) -> Vma | None:
        b, j = self._index_of(vma)
        blocks = self._blocks
        blk = blocks[b]
        if j + 1 < len(blk):
            return blk[j + 1]
        b += 1
        return blocks[b][0] if b < len(blocks) else None

    def prev_before(self, addr: int) -> Vma | None:
        """The last VMA that ends at or before addr (for a gap starting at addr)."""
        if not self._blocks:
            return None
        b, j = self._at_or_before(addr)
        if j < 0:
            return None
        vma = self._blocks[b][j]
        if vma.vm_end > addr:
            return self._before(b, j)
        return vma

    def next_from(self, addr: int) -> Vma | None:
        """The first VMA that starts at or after addr."""
        if not self._blocks:
            return None
        return self._vma_at(*self._first_at_or_after(addr))

    def range(self, start: int, end: int) -> list[Vma]:
        """Every VMA overlapping [start, end), in order (for_each_vma_range)."""
        blocks = self._blocks
        if not blocks:
            return []
        b, j = self._at_or_before(start)
        if j < 0 or blocks[b][j].vm_end <= start:
            b, j = self._next_pos(b, j) if j >= 0 else (0, 0)
        out: list[Vma] = []
        while b < len(blocks):
            blk = blocks[b]
            while j < len(blk):
                vma = blk[j]
                if vma.vm_start >= end:
                    return out
                out.append(vma)
                j += 1
            b, j = b + 1, 0
        return out

    # -- updates ------------------------------------------------------------------------

    def insert(self, vma: Vma, beside: Vma | None = None) -> None:
        """vma_iter_store_new(): the range must be free. ``beside``, a VMA of the tree that
        the new one touches (the other half of a split), saves the search for the place."""
        start, end = vma.vm_start, vma.vm_end
        if (start | end) % self._unit:  # (the unit is a power of two)
            raise AssertionError(f"{vma!r} is not aligned to {self._unit:#x}")
        # The kernel keeps vm_flags in a machine word; here equal values share one int
        # object, which saves its 32 bytes on most VMAs (plain ints only: an IntFlag keeps
        # its type).
        value = vma.vm_flags
        if type(value) is int:
            try:
                vma.vm_flags = self._flags[value]
            except KeyError:
                if len(self._flags) < _FLAG_VALUES:
                    self._flags[value] = value
        blocks = self._blocks
        if not blocks:
            self._new_first_block(vma)
            return
        # The tree's position, if the range goes right below the VMA there: where the gap
        # search or find_prev of the same mmap left it (the kernel's store reuses the
        # iterator of that walk). Otherwise beside's place, or a search.
        b, j = self._hb, self._hj
        nxt = prev = None
        if beside is None and b < len(blocks):
            blk = blocks[b]
            if j < len(blk):
                nxt = blk[j]
                if nxt.vm_start < end:
                    nxt = None
                elif j:
                    prev = blk[j - 1]
                    if prev.vm_end > start:
                        nxt = None
                elif b:
                    prev = blocks[b - 1][-1]
                    if prev.vm_end > start:
                        nxt = None
        if nxt is None:
            pos = self._position(beside) if beside is not None else None
            if pos is not None:
                b, j = pos
                if start >= blocks[b][j].vm_start:
                    j += 1  # above beside; below it, the new VMA takes beside's index
            else:
                b, j = self._at_or_before(start)
                j += 1
            blk = blocks[b]
            prev = self._before(b, j)
            nxt = blk[j] if j < len(blk) else self._vma_at(b + 1, 0)
            if prev is not None and prev.vm_end > start:
                raise AssertionError(f"{vma!r} overlaps {prev!r}")
            if nxt is not None and nxt.vm_start < end:
                raise AssertionError(f"{vma!r} overlaps {nxt!r}")
            rest = -1
        else:
            rest = self._rest
        shift = self._shift
        gap = (start - prev.vm_end if prev is not None else start) >> shift
        blk.insert(j, vma)
        gaps = self._gaps[b]
        gaps.insert(j, gap)
        if b == self._rb:
            # What was known of the block's gaps is restored below if it still holds.
            self._rest = -1
            if j != self._rj:
                rest = -1
        else:
            rest = -1
        self._hb = b
        self._hj = j
        self._len += 1
        if j == 0:
            if b:
                self._set_min(b, start)
            else:
                self._mins[0] = start  # block 0 keys no group (group 0's key is -1)
        if nxt is not None and rest >= 0:
            after = (nxt.vm_start - end) >> shift
            if gap > rest or after > rest:
                # Into the block's only largest gap, which splits in two, gap and after (both
                # smaller than it was), of which one is larger than every other gap of the
                # block: that one is its new largest, without a rescan.
                gaps[j + 1] = after
                if gap > after:
                    self._bcnt[b] = 1
                    self._set_bmax(b, gap)
                    self._rj = j
                    self._rest = after if after > rest else rest
                elif gap < after:
                    self._bcnt[b] = 1
                    self._set_bmax(b, after)
                    self._rj = j + 1
                    self._rest = gap if gap > rest else rest
                else:
                    self._bcnt[b] = 2
                    self._set_bmax(b, gap)
                if len(blk) > 2 * self._load:
                    self._split(b)
                return
        top = self._bmax[b]
        if gap >= top:
            if gap > top:
                self._bcnt[b] = 1
                self._set_bmax(b, gap)
            elif self._bcnt[b]:
                self._bcnt[b] += 1
        if nxt is not None:
            after = (nxt.vm_start - end) >> shift
            if j + 1 < len(blk):
                self._set_gap(b, j + 1, after)
            else:
                self._set_gap(b + 1, 0, after)
        if len(blk) > 2 * self._load:
            self._split(b)

    def remove(self, vma: Vma) -> None:
        """vma_iter_clear(): take a VMA of the tree out of it."""
        b, j = self._index_of(vma)
        # The removal of the VMA above a block's known only largest gap (see __init__)
        # keeps what is known: the next VMA's gap, larger still, takes its place.
        rest = -1
        if b == self._rb:
            rest = self._rest if j == self._rj else -1
            self._rest = -1
        blocks = self._blocks
        blk, gaps = blocks[b], self._gaps[b]
        del blk[j]
        gap = gaps.pop(j)
        self._hj = j  # now the VMA that followed
        self._len -= 1
        # The gap below the next VMA now reaches down to where this one's gap began.
        freed = gap + ((vma.vm_end - vma.vm_start) >> self._shift)
        if not blk:
            self._drop_block(b)
            if b < len(blocks):
                self._set_gap(b, 0, self._gaps[b][0] + freed)
            return
        if j < len(blk):
            if j == 0:
                if b:
                    self._set_min(b, blk[0].vm_start)
                else:
                    self._mins[0] = blk[0].vm_start
            # The next VMA's gap swallows the removed one and is larger than both: the
            # block's largest gap can only grow (it does if either of the two was it).
            grown = gaps[j] + freed
            gaps[j] = grown
            top = self._bmax[b]
            if grown > top:
                self._bcnt[b] = 1
                self._set_bmax(b, grown)
            elif grown == top and self._bcnt[b]:
                self._bcnt[b] += 1
            if rest >= 0 and len(blk) >= self._min_block:
                self._rest = rest
        else:
            if gap == self._bmax[b]:
                self._drop_top(b, gaps)
            if b + 1 < len(blocks):
                self._set_gap(b + 1, 0, self._gaps[b + 1][0] + freed)
        if len(blk) < self._min_block and len(blocks) > 1:
            self._join(b)

    def set_range(self, vma: Vma, start: int, end: int, pgoff: int) -> None:
        """vma_set_range(): callers guarantee the new range overlaps no other VMA."""
        pos = self._position(vma)
        old_start = vma.vm_start
        vma.vm_start = start
        vma.vm_end = end
        vma.vm_pgoff = pgoff
        if pos is None:
            return  # not in the tree (yet): nothing to index
        if (start | end) % self._unit:  # (the unit is a power of two)
            raise AssertionError(f"{vma!r} is not aligned to {self._unit:#x}")
        b, j = pos
        shift = self._shift
        if start != old_start:
            if j == 0:
                self._set_min(b, start)
            self._set_gap(b, j, self._gaps[b][j] + ((start - old_start) >> shift))
        nb, nj = self._next_pos(b, j)
        if nb < len(self._blocks):
            self._set_gap(nb, nj, (self._blocks[nb][nj].vm_start - end) >> shift)

    # -- block maintenance --------------------------------------------------------------

    def _new_first_block(self, vma: Vma) -> None:
        self._blocks.append([vma])
        gap = vma.vm_start >> self._shift
        self._gaps.append(array("q", (gap,)))
        self._mins = _keys_insert(self._mins, len(self._mins), vma.vm_start)
        self._bmax.append(gap)
        self._bcnt.append(1)
        self._rest = self._sb = self._kb = -1
        self._gkeys[:] = [-1]
        self._gmax[:] = [gap]
        self._len = 1
        self._levels = None

    def _set_min(self, b: int, start: int) -> None:
        """Block b now begins at ``start``; so does its group if b is the group's first."""
        mins = self._mins
        old = mins[b]
        mins[b] = start
        if b:
            gkeys = self._gkeys
            g = bisect_right(gkeys, old) - 1
            if gkeys[g] == old:
                gkeys[g] = start

    def _set_gap(self, b: int, j: int, gap: int) -> None:
        if b == self._rb:
            self._rest = -1
        gaps = self._gaps[b]
        old = gaps[j]
        gaps[j] = gap
        top = self._bmax[b]
        if gap >= top:
            if gap > top:
                self._bcnt[b] = 1
                self._set_bmax(b, gap)
            elif old != top and self._bcnt[b]:
                self._bcnt[b] += 1
        elif old == top:
            self._drop_top(b, gaps)

    def _drop_top(self, b: int, gaps: array[int]) -> None:
        """One gap equal to block b's largest is gone (shrunk or removed): the largest
        stays unless that was the last of its size, then the block is rescanned."""
        bcnt = self._bcnt
        count = bcnt[b] - 1 if bcnt[b] else gaps.count(self._bmax[b])
        if count:
            bcnt[b] = count
            return
        bcnt[b] = 0  # not counted: a block rescanned is usually one whose largest is unique
        self._set_bmax(b, max(gaps))

    def _set_bmax(self, b: int, value: int) -> None:
        if b > self._sr and value >= self._su:
            self._sb = -1  # a block above the last search's answer may now be the answer
        bmax = self._bmax
        if b == self._kb:
            if value >= self._krest:
                # Still the largest of the tree (see __init__): its group and every node
                # above it take the value.
                bmax[b] = value
                g = self._kg
                levels = self._levels
                if levels is None:
                    self._gmax[g] = value
                else:
                    for level in levels:  # levels[0] is _gmax itself
                        level[g] = value
                        g >>= _NODE_SHIFT
                return
            self._kb = -1
        elif value > self._krest:
            self._kb = -1  # another block may now hold the largest
        old = bmax[b]
        bmax[b] = value
        gkeys, mins = self._gkeys, self._mins
        g = bisect_right(gkeys, mins[b]) - 1
        top = self._gmax[g]
        if value > top:
            self._set_gmax(g, value)
        elif old == top and value < old:
            # The group's largest shrank: recompute it over the group's blocks.
            first = _keys_left(mins, gkeys[g]) if g else 0
            end = _keys_left(mins, gkeys[g + 1]) if g + 1 < len(gkeys) else len(mins)
            self._set_gmax(g, _max_of(bmax, first, end) if _NATIVE else max(bmax[first:end]))
            levels = self._levels
            # Still the largest under its root-level node: maybe of the whole tree.
            if levels is None or value == levels[-1][g >> (_NODE_SHIFT * (len(levels) - 1))]:
                self._learn_rest(b, g, first, end)

    def _learn_rest(self, b: int, g: int, first: int, end: int) -> None:
        """After block b's largest shrank and stayed the largest of the whole tree: bound
        the other blocks of its group and the other children of each node above it, so
        that its next changes climb no further (see __init__). Once per block split or so
        in a placed build; the per-block bound (_rest) is learnt by the search likewise."""
        levels = self._max_tree()
        bmax = self._bmax
        rest = max(max(bmax[first:b], default=-1), max(bmax[b + 1:end], default=-1))
        i = g
        for level in levels:
            lo = i & -_NODE
            hi = min(lo + _NODE, len(level))
            rest = max(rest, max(level[lo:i], default=-1), max(level[i + 1:hi], default=-1))
            i >>= _NODE_SHIFT
        if bmax[b] >= rest:
            self._kb, self._kg, self._krest = b, g, rest

    def _set_gmax(self, g: int, value: int) -> None:
        """Group g's largest gap is now ``value``: climb the max-tree while nodes change."""
        gmax = self._gmax
        old = gmax[g]
        gmax[g] = value
        levels = self._levels
        if levels is None:
            return
        lower = gmax
        for d in range(1, len(levels)):
            level = levels[d]
            g >>= _NODE_SHIFT
            top = level[g]
            if value < top:
                if old != top:
                    return  # a smaller child changed
                first = g << _NODE_SHIFT
                value = (_max_of(lower, first, min(first + _NODE, len(lower))) if _NATIVE
                         else max(lower[first:first + _NODE]))
            if value == top:
                return
            level[g] = value
            old = top
            lower = level

    def _group_of(self, b: int) -> int:
        return bisect_right(self._gkeys, self._mins[b]) - 1

    def _group_range(self, g: int) -> tuple[int, int]:
        """The blocks [first, end) of group g."""
        gkeys, mins = self._gkeys, self._mins
        first = _keys_left(mins, gkeys[g]) if g else 0
        end = _keys_left(mins, gkeys[g + 1]) if g + 1 < len(gkeys) else len(mins)
        return first, end

    def _refresh_gmax(self, g: int) -> None:
        first, end = self._group_range(g)
        self._set_gmax(g, _max_of(self._bmax, first, end))

    def _split(self, b: int) -> None:
        """Split the full block b in two (its group keeps both halves)."""
        self._rest = self._sb = self._kb = -1  # block numbers change
        blocks, gaps = self._blocks, self._gaps
        blk, block_gaps = blocks[b], gaps[b]
        half = len(blk) // 2
        # Slices are allocated to size, where shrinking a list in place keeps its spare
        # room: a block that is not written again (most of them) saves 3 bytes a VMA.
        upper = blk[half:]
        upper_gaps = block_gaps[half:]
        blocks[b] = blk[:half]
        gaps[b] = block_gaps = block_gaps[:half]
        blocks.insert(b + 1, upper)
        gaps.insert(b + 1, upper_gaps)
        self._mins = _keys_insert(self._mins, b + 1, upper[0].vm_start)
        # Each half counted now (one more pass over what max() just read), so that the
        # first shrink of a half's largest gap does not rescan it (see _drop_top).
        top = max(block_gaps)
        self._bmax[b] = top
        self._bcnt[b] = block_gaps.count(top)
        top = max(upper_gaps)
        self._bmax.insert(b + 1, top)
        self._bcnt.insert(b + 1, upper_gaps.count(top))
        g = self._group_of(b)
        first, end = self._group_range(g)
        if end - first > 2 * self._fanout:
            self._split_group(g, first, end)

    def _drop_block(self, b: int) -> None:
        """Take block b (emptied, or joined into its left neighbour) out of its group."""
        self._rest = self._sb = self._kb = -1  # block numbers change
        mins = self._mins
        start, top = mins[b], self._bmax[b]
        g = self._group_of(b)
        del self._blocks[b]
        del self._gaps[b]
        self._mins = mins = _keys_delete(mins, b)
        del self._bmax[b]
        del self._bcnt[b]
        gkeys = self._gkeys
        if b == 0 or gkeys[g] == start:
            # b was the group's first block: the next one (now at b) is, if still in it.
            if b < len(mins) and (g + 1 == len(gkeys) or mins[b] < gkeys[g + 1]):
                if g:
                    gkeys[g] = mins[b]
            else:
                self._remove_group(g)
                return
        if top == self._gmax[g]:
            self._refresh_gmax(g)
        first, end = self._group_range(g)
        if end - first < self._gmin and len(gkeys) > 1:
            self._join_group(g)

    def _join(self, b: int) -> None:
        """Merge the small block b into a neighbour (then split again if too big)."""
        if b == 0:
            b = 1
        left = b - 1
        blocks = self._blocks
        blocks[left].extend(blocks[b])
        self._gaps[left].extend(self._gaps[b])
        bmax, bcnt = self._bmax, self._bcnt
        if bmax[b] > bmax[left]:
            bcnt[left] = bcnt[b]
            self._set_bmax(left, bmax[b])
        elif bmax[b] == bmax[left]:
            bcnt[left] = bcnt[left] + bcnt[b] if bcnt[left] and bcnt[b] else 0
        self._drop_block(b)
        if len(blocks[left]) > 2 * self._load:
            self._split(left)

    # -- groups of blocks ---------------------------------------------------------------

    def _split_group(self, g: int, first: int, end: int) -> None:
        mid = (first + end) >> 1
        bmax = self._bmax
        self._gkeys.insert(g + 1, self._mins[mid])
        self._gmax[g] = max(bmax[first:mid])
        self._gmax.insert(g + 1, max(bmax[mid:end]))
        self._levels = None
        self._kb = -1

    def _remove_group(self, g: int) -> None:
        gkeys = self._gkeys
        del gkeys[g]
        del self._gmax[g]
        if gkeys:
            gkeys[0] = -1
        self._levels = None
        self._kb = -1

    def _join_group(self, g: int) -> None:
        """Merge the small group g into a neighbour (then split again if too big)."""
        if g == 0:
            g = 1
        gmax = self._gmax
        if gmax[g] > gmax[g - 1]:
            gmax[g - 1] = gmax[g]
        del self._gkeys[g]
        del gmax[g]
        self._levels = None
        self._kb = -1
        first, end = self._group_range(g - 1)
        if end - first > 2 * self._fanout:
            self._split_group(g - 1, first, end)

    def _max_tree(self) -> list[list[int]]:
        """The levels of the max-tree over the groups, rebuilt after the groups changed."""
        levels = self._levels
        if levels is not None:
            return levels
        level = self._gmax
        levels = [level]
        while len(level) > _NODE:
            level = [max(level[k:k + _NODE]) for k in range(0, len(level), _NODE)]
            levels.append(level)
        self._levels = levels
        return levels

    def _last_group_with(self, g: int, length: int) -> int:
        """The highest group index < g whose largest gap is >= length, or -1: up the
        max-tree until a node left of the path has one (looking into a node only if its
        parent says it has one), then down its rightmost such child."""
        levels = self._max_tree()
        top = len(levels) - 1
        for d, level in enumerate(levels):
            if d == top or levels[d + 1][g >> _NODE_SHIFT] >= length:
                found = _last_at_least(level, g & -_NODE, g, length)
                if found >= 0:
                    while d:
                        top = level[found]
                        d -= 1
                        level = levels[d]
                        first = found << _NODE_SHIFT
                        end = min(first + _NODE, len(level))
                        found = (_scan_last(level, first, end, length) if _NATIVE
                                 else _last_from_top(level, first, end, length, top))
                    return found
            g >>= _NODE_SHIFT
        return -1

    def _first_group_with(self, g: int, length: int) -> int:
        """The lowest group index > g whose largest gap is >= length, or -1."""
        levels = self._max_tree()
        top = len(levels) - 1
        for d, level in enumerate(levels):
            if d == top or levels[d + 1][g >> _NODE_SHIFT] >= length:
                end = min((g | (_NODE - 1)) + 1, len(level))
                found = _first_at_least(level, g + 1, end, length)
                if found >= 0:
                    while d:
                        top = level[found]
                        d -= 1
                        level = levels[d]
                        first = found << _NODE_SHIFT
                        end = min(first + _NODE, len(level))
                        found = (_scan_first(level, first, end, length) if _NATIVE
                                 else _first_from_top(level, first, end, length, top))
                    return found
            g >>= _NODE_SHIFT
        return -1

    def _last_block_with(self, b: int, length: int) -> int:
        """The highest block index < b whose largest gap is >= length, or -1: first in b's
        own group, then in the highest lower group that has one."""
        gkeys, mins, bmax = self._gkeys, self._mins, self._bmax
        g = bisect_right(gkeys, mins[b]) - 1
        if self._gmax[g] >= length:
            found = _last_at_least(bmax, _keys_left(mins, gkeys[g]) if g else 0, b, length)
            if found >= 0:
                return found
        g = self._last_group_with(g, length)
        if g < 0:
            return -1
        first = _keys_left(mins, gkeys[g]) if g else 0
        end = _keys_left(mins, gkeys[g + 1]) if g + 1 < len(gkeys) else len(mins)
        if _NATIVE:
            return _scan_last(bmax, first, end, length)
        return _last_from_top(bmax, first, end, length, self._gmax[g])

    def _first_block_with(self, b: int, length: int) -> int:
        """The lowest block index > b whose largest gap is >= length, or -1."""
        gkeys, mins, bmax = self._gkeys, self._mins, self._bmax
        g = bisect_right(gkeys, mins[b]) - 1
        if self._gmax[g] >= length:
            end = _keys_left(mins, gkeys[g + 1]) if g + 1 < len(gkeys) else len(mins)
            found = _first_at_least(bmax, b + 1, end, length)
            if found >= 0:
                return found
        g = self._first_group_with(g, length)
        if g < 0:
            return -1
        first = _keys_left(mins, gkeys[g]) if g else 0
        end = _keys_left(mins, gkeys[g + 1]) if g + 1 < len(gkeys) else len(mins)
        if _NATIVE:
            return _scan_first(bmax, first, end, length)
        return _first_from_top(bmax, first, end, length, self._gmax[g])

    # -- gap searches -------------------------------------------------------------------

    def highest_gap(self, low: int, high: int, length: int) -> Gap | None:
        """The highest free gap, clipped to [low, high), of at least ``length`` bytes:
        (gap_start, gap_end, the VMA after the gap or None), or None.

        mas_empty_area_rev() as vma_iter_area_highest() calls it; the same answer as the
        first gap of :meth:`gaps_topdown` that is long enough, in O(log n)."""
        # (Conditional expressions rather than max(): this runs on every placed mmap, and
        # a call of a builtin costs more than a comparison in both builds.)
        if length < 1:
            length = 1
        if high <= low:
            return None
        blocks = self._blocks
        if not blocks:
            return (max(low, 0), high, None) if high - max(low, 0) >= length else None
        last = blocks[-1]
        highest = last[-1]
        if highest.vm_start < high:
            # Nothing starts at or above high (the usual limit, mmap_base): the free range
            # above the highest VMA, else the gaps below it.
            gap_start = highest.vm_end
            if gap_start < high and high - (gap_start if gap_start > low else low) >= length:
                self._hb, self._hj = len(blocks), 0
                return (gap_start if gap_start > low else low), high, None
            if highest.vm_start <= low:
                return None
            b = len(blocks) - 1
            j = len(last)
        else:
            b, j = self._first_at_or_after(high)
            following = self._vma_at(b, j)
            prev = self._before(b, j)
            gap_start = prev.vm_end if prev is not None else 0
            if gap_start < high and high - max(gap_start, low) >= length:
                self._hb, self._hj = b, j
                return max(gap_start, low), high, following
            if prev is None or prev.vm_start <= low:
                return None
            # The gaps below prev and lower: the last VMA at or before (b, j - 1) whose gap
            # fits.
            if j == 0:
                b, j = b - 1, len(blocks[b - 1])
        units = -(-length >> self._shift)  # rounded up (one new int fewer than adding)
        found = _last_gap(self._gaps[b], 0, j, units) if self._bmax[b] >= units else -1
        if found < 0:
            if b == self._sb and units == self._su and self._bmax[self._sr] >= units:
                b = self._sr
            else:
                start = b
                b = self._last_block_with(b, units)
                if b < 0:
                    return None
                self._sb, self._sr, self._su = start, b, units
            if b == self._rb and 0 <= self._rest < units:
                found = self._rj  # the block's only gap that fits (see __init__)
            else:
                found = self._last_fitting_gap(b, units)
        vma = blocks[b][found]
        gap_end = vma.vm_start
        gap_start = gap_end - (self._gaps[b][found] << self._shift)
        if gap_start < low:
            gap_start = low
        if gap_end - gap_start < length:
            return None
        self._hb = b  # where mas_empty_area_rev() leaves the maple state
        self._hj = found
        return gap_start, gap_end, vma

    def _last_fitting_gap(self, b: int, units: int) -> int:
        """The index of the last gap of block b that is >= units, where one is (as
        _last_from_top). When that is the block's first gap and its only largest, what
        the scan saw of the others is kept (see __init__): top-down placement lands there."""
        gaps = self._gaps[b]
        found = gaps.index(self._bmax[b])
        above = max(gaps[found + 1:]) if found + 1 < len(gaps) else 0
        if above >= units:
            return _last_index_at_least(gaps, found + 1, len(gaps), units)
        if found == 0:
            self._rb, self._rj, self._rest = b, 0, above
        return found

    def lowest_gap(self, low: int, high: int, length: int) -> Gap | None:
        """The lowest free gap, clipped to [low, high), of at least ``length`` bytes:
        (gap_start, gap_end, the VMA after the gap or None), or None.

        mas_empty_area() as vma_iter_area_lowest() calls it; the same answer as the first
        gap of :meth:`gaps_bottomup` that is long enough, in O(log n)."""
        length = max(length, 1)
        blocks = self._blocks
        if not blocks:
            return (low, high, None) if high - low >= length else None
        gap_start, b, j = self._gap_from(low)
        following = self._vma_at(b, j)
        gap_end = high if following is None else min(high, following.vm_start)
        if gap_end - gap_start >= length:
            return gap_start, gap_end, following
        if following is None or following.vm_end >= high:
            return None
        # Gaps above `following`: the first VMA after (b, j) whose gap below it fits.
        gaps = self._gaps[b]
        units = (length + self._unit - 1) >> self._shift
        found = _first_gap(gaps, j + 1, len(gaps), units) if self._bmax[b] >= units else -1
        if found < 0:
            b = self._first_block_with(b, units)
            if b >= 0:
                found = _first_from_top(self._gaps[b], 0, len(blocks[b]), units, self._bmax[b])
        if found < 0:
            last = blocks[-1][-1]
            if high - last.vm_end >= length:
                return last.vm_end, high, None
            return None
        vma = blocks[b][found]
        gap_start = vma.vm_start - (self._gaps[b][found] << self._shift)
        gap_end = min(high, vma.vm_start)
        if gap_end - gap_start < length:
            return None
        return gap_start, gap_end, vma

    def _gap_from(self, low: int) -> tuple[int, int, int]:
        """Where the free range containing or following ``low`` begins (at least low), and
        the position of the VMA above it. The tree must not be empty."""
        b, j = self._at_or_before(low)
        if j < 0:
            return low, 0, 0
        gap_start = max(low, self._blocks[b][j].vm_end)
        b, j = self._next_pos(b, j)
        return gap_start, b, j

    def gaps_topdown(self, low: int, high: int) -> Iterator[Gap]:
        """Free gaps [gap_start, gap_end) inside [low, high), highest first, each with the VMA
        that follows it (whose start gap may shrink it)."""
        if not self._blocks:
            if high > max(low, 0):
                yield max(low, 0), high, None
            return
        b, j = self._first_at_or_after(high)
        following = self._vma_at(b, j)
        gap_end = high
        while gap_end > low:
            prev = self._before(b, j)
            gap_start = prev.vm_end if prev is not None else 0
            if gap_start < gap_end:
                yield max(gap_start, low), gap_end, following
            if prev is None:
                return
            following = prev
            gap_end = min(gap_end, prev.vm_start)
            if j > 0:
                j -= 1
            else:
                b, j = b - 1, len(self._blocks[b - 1]) - 1

    def gaps_bottomup(self, low: int, high: int) -> Iterator[Gap]:
        """Free gaps inside [low, high), lowest first, each with the VMA that follows it."""
        blocks = self._blocks
        if not blocks:
            if high > low:
                yield low, high, None
            return
        gap_start, b, j = self._gap_from(low)
        while gap_start < high:
            following = self._vma_at(b, j)
            gap_end = high if following is None else min(high, following.vm_start)
            if gap_end > gap_start:
                yield gap_start, gap_end, following
            if following is None:
                return
            gap_start = max(gap_start, following.vm_end)
            b, j = self._next_pos(b, j)

    # -- checks -------------------------------------------------------------------------

    def validate(self) -> None:
        """Check the index against the VMAs: order, block bounds, gaps, maxima, groups,
        counts and the max-tree."""
        prev_end = 0
        count = 0
        for b, blk in enumerate(self._blocks):
            gaps = self._gaps[b]
            if not blk or len(blk) != len(gaps) or len(blk) > 2 * self._load:
                raise AssertionError(f"tree block {b} has {len(blk)} VMAs, {len(gaps)} gaps")
            if self._mins[b] != blk[0].vm_start:
                raise AssertionError(f"tree block {b} starts at {self._mins[b]:#x}, not at "
                                     f"{blk[0].vm_start:#x} (vm_start changed outside set_range?)")
            for vma, gap in zip(blk, gaps, strict=True):
                if vma.vm_start - prev_end != gap << self._shift:
                    raise AssertionError(f"tree gap below {vma!r} is {gap << self._shift:#x},"
                                         f" not {vma.vm_start - prev_end:#x} (range changed "
                                         "outside set_range?)")
                prev_end = vma.vm_end
            if self._bmax[b] != max(gaps):
                raise AssertionError(f"tree block {b}: largest gap {self._bmax[b]:#x}")
            if self._bcnt[b] not in (0, gaps.count(self._bmax[b])):
                raise AssertionError(f"tree block {b}: {self._bcnt[b]} gaps counted as the "
                                     f"largest, {gaps.count(self._bmax[b])} are")
            count += len(blk)
        if count != self._len or not len(self._mins) == len(self._bcnt) == len(self._blocks):
            raise AssertionError(f"tree counts {self._len} VMAs, holds {count}")
        self._validate_groups()
        self._validate_search_state()
        levels = self._levels
        if levels is not None:
            self._levels = None
            if self._max_tree() != levels or levels[0] is not self._gmax:
                raise AssertionError("tree gap index out of date")

    def _validate_groups(self) -> None:
        gkeys, gmax = self._gkeys, self._gmax
        if not self._blocks:
            if gkeys or gmax:
                raise AssertionError(f"empty tree with groups {gkeys}")
            return
        if not gkeys or gkeys[0] != -1 or len(gmax) != len(gkeys):
            raise AssertionError(f"tree groups {gkeys} with maxima {gmax}")
        mins = set(self._mins)
        ends = 0
        for g in range(len(gkeys)):
            if g and (gkeys[g] not in mins or gkeys[g] <= gkeys[g - 1]):
                raise AssertionError(f"tree group {g} keyed {gkeys[g]:#x}: no block starts there")
            first, end = self._group_range(g)
            if first != ends or not (
                min(self._gmin if len(gkeys) > 1 else 1, 2 * self._fanout)
                <= end - first <= 2 * self._fanout
            ):
                raise AssertionError(f"tree group {g} holds blocks {first}..{end}")
            if gmax[g] != max(self._bmax[first:end]):
                raise AssertionError(f"tree group {g}: largest gap {gmax[g]:#x}")
            ends = end

    def _validate_search_state(self) -> None:
        """What the last top-down search learnt (see __init__) is still true."""
        kb = self._kb
        if kb >= 0:
            if self._group_of(kb) != self._kg:
                raise AssertionError(f"tree block {kb} is not in group {self._kg}")
            blocks_but_kb = self._bmax[:kb] + self._bmax[kb + 1:]
            if max(blocks_but_kb, default=-1) > self._krest or self._bmax[kb] < self._krest:
                raise AssertionError(f"tree block {kb}: not the largest of the tree over "
                                     f"{self._krest:#x}")
        if self._sb >= 0 and max(self._bmax[self._sr + 1:self._sb], default=0) >= self._su:
            raise AssertionError(f"tree search from block {self._sb} for {self._su:#x} would"
                                 f" not stop at block {self._sr}")
        rest = self._rest
        if rest < 0:
            return
        b, j = self._rb, self._rj
        gaps = self._gaps[b] if b < len(self._gaps) else array("q")
        if not j < len(gaps) or gaps[j] != self._bmax[b]:
            raise AssertionError(f"tree block {b}: gap {j} is not its largest")
        others = max(max(gaps[:j], default=0), max(gaps[j + 1:], default=0))
        if not others <= rest < gaps[j]:
            raise AssertionError(f"tree block {b}: the largest gap but {j} is {others:#x},"
                                 f" over {rest:#x}")
