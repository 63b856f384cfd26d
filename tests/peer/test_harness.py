"""The scenarios of the kernel's userland VMA harness (tools/testing/vma), A1-A39, at the
model's level; docs/kernel-tests.md section 1 maps each row to its harness test.

Two kinds of test, as the rows allow:

- ``test_aN_*`` call the model's own mm/vma.c functions (vma_merge_new_range,
  vma_merge_existing_range via vma_modify_flags, vma_expand, vma_merge_extend, copy_vma) on
  VMAs linked straight into the tree, as the harness does, and assert what it asserts: the
  returned object, ranges, pgoffs, anon_vmas and map_count. Addresses are page numbers times
  the page size, so pgoffs read as in the harness. "Write-locked" (vma_start_write) and the
  vma iterator's position are not modelled.
- ``test_aN_host_*`` are the user-space analogues of the [H~] rows, on both backends (the
  ``mm`` fixture): the same layouts reached with mmap, mprotect and mremap.

Rows covered elsewhere: A1's analogue is tests/core/test_merge.py::
test_adjacent_new_ranges_merge_both_ways, A2's test_mprotect_middle_splits_and_restoring_remerges,
A26's test_three_way_with_two_anon_vmas_merges_left_only, A27's
test_separately_faulted_vmas_fill_gap_merges_with_prev_only, A37 is
test_harness_mmap_region_basic, A38's analogue (a move to a free range) is
test_ltp_errno.py::test_f18_f19_mremap05_mremap08_fixed_move.
"""

from __future__ import annotations

import itertools

import pytest

import vmamodel as v
from core.util import NOREPLACE, RO, RW, P, at, flags_of, layout
from vmamodel.constants import VM, VM_SPECIAL, VM_STICKY
from vmamodel.file import VmOperations
from vmamodel.merge import (
    MergeState,
    VmaMergeStruct,
    vma_expand,
    vma_merge_existing_range,
    vma_merge_new_range,
    vma_modify_flags,
)
from vmamodel.mremap import copy_vma, vma_merge_extend
from vmamodel.vma import AnonVma, Vma

#: The harness's default flag set.
RWF = int(VM.READ | VM.WRITE | VM.MAYREAD | VM.MAYWRITE)
FIXED_MOVE = v.MREMAP_MAYMOVE | v.MREMAP_FIXED


class CloseOps(VmOperations):
    """vm_ops with a close hook: such a VMA may be extended by a merge, never removed."""

    def close(self, vma: Vma) -> None:
        return None


CLOSE = CloseOps()


def space() -> v.AddressSpace:
    return v.AddressSpace(debug=True)


def link(
    mm: v.AddressSpace,
    start: int,
    end: int,
    *,
    flags: int = RWF,
    anon: AnonVma | None = None,
    close: bool = False,
) -> Vma:
    """alloc_and_link_vma(): pages [start, end) with pgoff = start, straight into the tree."""
    vma = Vma(mm, mm.next_vma_id(), start * P, end * P, start, flags)
    vma.anon_vma = anon
    vma.vm_ops = CLOSE if close else None
    mm.tree.insert(vma)
    mm.map_count += 1
    return vma


def new_range(mm: v.AddressSpace, start: int, end: int, flags: int = RWF) -> VmaMergeStruct:
    """A new-range proposal for pages [start, end), pgoff = start, with prev and next from the
    tree around it."""
    return VmaMergeStruct(
        mm, start * P, end * P, start, flags, None,
        prev=mm.tree.prev_before(start * P), next=mm.tree.find(start * P),
    )


def modify(mm: v.AddressSpace, prev: Vma | None, middle: Vma, start: int, end: int) -> Vma:
    """vma_modify_flags() of pages [start, end) of ``middle`` without changing the flags: the
    existing-range merge, else the split."""
    vma, _ = vma_modify_flags(mm, prev, middle, start * P, end * P, middle.vm_flags)
    return vma


def existing(mm: v.AddressSpace, prev: Vma | None, middle: Vma, start: int, end: int):
    """vma_merge_existing_range() alone (no split on NOMERGE): (result, state)."""
    vmg = VmaMergeStruct.from_vma(mm, prev, middle, start * P, end * P)
    return vma_merge_existing_range(vmg), vmg.state


def expansion(
    mm: v.AddressSpace, target: Vma, end: int, pgoff: int, nxt: Vma | None = None
) -> VmaMergeStruct:
    """A vma_expand() proposal: grow ``target`` to end at page ``end``, taking in ``nxt``."""
    vmg = VmaMergeStruct(mm, target.vm_start, end * P, pgoff, RWF, None, middle=target, next=nxt)
    vmg.target = target
    return vmg


def ranges(mm: v.AddressSpace) -> list[tuple[int, int, int]]:
    """(first page, end page, pgoff) of each VMA."""
    return [(vma.vm_start // P, vma.vm_end // P, vma.vm_pgoff) for vma in mm.tree]


def span(vma: Vma) -> tuple[int, int, int]:
    return vma.vm_start // P, vma.vm_end // P, vma.vm_pgoff


# ---- A.1 simple (A1-A4) -------------------------------------------------------------------


def test_a1_simple_merge():
    mm = space()
    left = link(mm, 0, 1)
    right = link(mm, 2, 3)
    assert vma_merge_new_range(new_range(mm, 1, 2)) is left
    assert ranges(mm) == [(0, 3, 0)]
    assert right.detached and mm.map_count == 1


def test_a2_simple_modify_returns_the_original_object_for_the_middle():
    mm = space()
    vma = link(mm, 0, 3)
    assert modify(mm, vma, vma, 1, 2) is vma
    assert span(vma) == (1, 2, 1)
    assert ranges(mm) == [(0, 1, 0), (1, 2, 1), (2, 3, 2)]


def test_a3_simple_expand():
    mm = space()
    vma = link(mm, 0, 1)
    assert vma_expand(expansion(mm, vma, 3, 0))
    assert ranges(mm) == [(0, 3, 0)]


def test_a3_host_mremap_grows_in_place(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert mm.mremap(at(0), P, 3 * P) == at(0)
    assert layout(mm) == [(0, 3, "rw-p")]


def test_a4_host_mremap_shrinks_in_place(mm):
    """vma_shrink() itself serves only exec's stack move (not modelled); a shrinking mremap
    is its user-visible counterpart."""
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 3 * P, P) == at(0)
    assert layout(mm) == [(0, 1, "rw-p")]


# ---- A.2 merge_new (A5-A11) ---------------------------------------------------------------


def _merge_new_setup(mm: v.AddressSpace, sticky: dict[str, bool]) -> dict[str, Vma]:
    def flags(name: str) -> int:
        return RWF | (VM_STICKY if sticky.get(name) else 0)

    return {name: link(mm, s, e, flags=flags(name)) for name, s, e in
            (("a", 0, 2), ("b", 3, 4), ("c", 11, 12))}


def test_a5_a11_merge_new_sequence():
    """Seven new ranges around A=[0,2), B=[3,4), C=[11,12): which VMA each merge returns,
    its range and anon_vma, and map_count after each step."""
    mm = space()
    av = AnonVma(mm.next_anon_vma_id())
    vmas = _merge_new_setup(mm, {})
    a, b, c = vmas["a"], vmas["b"], vmas["c"]
    # A5: no neighbour touches [7,9): the caller links D.
    vmg = new_range(mm, 7, 9)
    assert vma_merge_new_range(vmg) is None and vmg.state is MergeState.NOMERGE
    d = link(mm, 7, 9)
    assert mm.map_count == 4
    # A6: A has a close hook (it is extended, not removed); B is faulted.
    a.vm_ops, b.anon_vma = CLOSE, av
    assert vma_merge_new_range(new_range(mm, 2, 3)) is a
    assert (span(a), a.anon_vma, b.detached, mm.map_count) == ((0, 4, 0), av, True, 3)
    # A7
    assert vma_merge_new_range(new_range(mm, 4, 5)) is a
    assert (span(a), mm.map_count) == ((0, 5, 0), 3)
    # A8: D, faulted and with a close hook, is extended downwards.
    d.anon_vma, d.vm_ops = av, CLOSE
    assert vma_merge_new_range(new_range(mm, 6, 7)) is d
    assert (span(d), d.anon_vma, mm.map_count) == ((6, 9, 6), av, 3)
    # A9: without D's close hook, the gap [5,6) joins A and D.
    d.vm_ops = None
    assert vma_merge_new_range(new_range(mm, 5, 6)) is a
    assert (span(a), d.detached, mm.map_count) == ((0, 9, 0), True, 2)
    # A10
    c.anon_vma = av
    assert vma_merge_new_range(new_range(mm, 10, 11)) is c
    assert (span(c), mm.map_count) == ((10, 12, 10), 2)
    # A11
    assert vma_merge_new_range(new_range(mm, 9, 10)) is a
    assert (ranges(mm), a.anon_vma, c.detached) == ([(0, 12, 0)], av, True)


@pytest.mark.parametrize(
    "sticky",
    [dict(zip(("is", "a", "b", "c"), bits, strict=True))
     for bits in itertools.product((False, True), repeat=4)],
    ids=lambda s: "+".join(k for k, on in s.items() if on) or "none",
)
def test_a5_a11_sticky_flags_are_kept_and_never_block(sticky):
    """The post-6.18 sweep: a merge result has the sticky flags (VM_MAYBE_GUARD) of any VMA
    taking part, and sticky flags never stop a merge (the same ranges as without them)."""
    mm = space()
    _merge_new_setup(mm, sticky)
    new_flags = RWF | (VM_STICKY if sticky["is"] else 0)
    steps = [(7, 9, None), (2, 3, ("is", "a", "b")), (4, 5, ("is", "a")),
             (6, 7, ("is",)), (5, 6, ("is", "a")), (10, 11, ("is", "c")), (9, 10, ("is", "a", "c"))]
    for start, end, parts in steps:
        merged = vma_merge_new_range(new_range(mm, start, end, new_flags))
        if parts is None:
            assert merged is None
            link(mm, start, end, flags=new_flags)
            continue
        assert merged is not None
        if any(sticky[name] for name in parts):
            assert merged.vm_flags & VM_STICKY
    assert ranges(mm) == [(0, 12, 0)]


def test_a5_a11_host_merge_new_sequence(mm):
    """The same seven new ranges on the host: one faulted region carved into A, B, C and D
    (so they share one anon_vma, as the harness's single dummy does), then each range
    mapped in the harness's order."""
    mm.mmap(at(0), 12 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    for start, end in ((2, 3), (4, 7), (9, 11)):
        mm.munmap(at(start), (end - start) * P)
    expected = [
        [(0, 2), (3, 4), (7, 9), (11, 12)],  # the setup, D included (A5)
        [(0, 4), (7, 9), (11, 12)],  # A6
        [(0, 5), (7, 9), (11, 12)],  # A7
        [(0, 5), (6, 9), (11, 12)],  # A8
        [(0, 9), (11, 12)],  # A9
        [(0, 9), (10, 12)],  # A10
        [(0, 12)],  # A11
    ]
    assert [(s, e) for s, e, _ in layout(mm)] == expected[0]
    for (start, end), want in zip(((2, 3), (4, 5), (6, 7), (5, 6), (10, 11), (9, 10)),
                                  expected[1:], strict=True):
        mm.mmap(at(start), (end - start) * P, RW, NOREPLACE)
        assert [(s, e) for s, e, _ in layout(mm)] == want


def test_a5_a11_host_sticky_guard_flag_is_kept_and_never_blocks_a_merge(mm):
    """VM_MAYBE_GUARD ("gu", set by MADV_GUARD_INSTALL) is sticky on the host's 6.18: new
    ranges merge with a guarded VMA on either side (and with an unguarded one beyond), and
    the result keeps "gu". (Guarding also gives the VMA an anon_vma, so only one guarded
    VMA takes part in each merge.)"""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.madvise(at(0), P, v.MADV_GUARD_INSTALL)
    mm.mmap(at(3), P, RW, NOREPLACE)
    mm.mmap(at(2), P, RW, NOREPLACE)
    mm.mmap(at(10), P, RW, NOREPLACE)
    mm.madvise(at(10), P, v.MADV_GUARD_INSTALL)
    mm.mmap(at(9), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 4, "rw-p"), (9, 11, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me gu ac"] * 2


# ---- A.3 special flags (A12-A13) ----------------------------------------------------------


def test_a12_a13_special_flags_are_exactly_four():
    assert int(VM_SPECIAL) == int(VM.IO | VM.DONTEXPAND | VM.PFNMAP | VM.MIXEDMAP)


@pytest.mark.parametrize("special", [VM.IO, VM.DONTEXPAND, VM.PFNMAP, VM.MIXEDMAP])
def test_a12_new_range_next_to_a_special_vma_never_merges(special):
    mm = space()
    link(mm, 0, 3, flags=RWF | special)
    vmg = new_range(mm, 3, 4, RWF | special)
    assert vma_merge_new_range(vmg) is None and vmg.state is MergeState.NOMERGE
    assert ranges(mm) == [(0, 3, 0)]


@pytest.mark.parametrize("special", [VM.IO, VM.DONTEXPAND, VM.PFNMAP, VM.MIXEDMAP])
def test_a13_existing_range_with_a_special_flag_never_merges(special):
    mm = space()
    prev = link(mm, 0, 3, flags=RWF | special)
    vma = link(mm, 3, 4, flags=RWF | special)
    assert existing(mm, prev, vma, 3, 4) == (None, MergeState.NOMERGE)
    assert ranges(mm) == [(0, 3, 0), (3, 4, 3)]


# ---- A.4 vm_ops->close (A14-A19) ----------------------------------------------------------


def test_a14_new_range_three_way_degrades_when_next_has_close():
    mm = space()
    prev = link(mm, 0, 3)
    nxt = link(mm, 5, 9, close=True)
    vmg = new_range(mm, 3, 5)
    assert vma_merge_new_range(vmg) is prev and vmg.state is MergeState.SUCCESS
    assert ranges(mm) == [(0, 5, 0), (5, 9, 5)] and not nxt.detached


@pytest.mark.parametrize(
    ("row", "with_prev", "with_next"),
    [("A15", True, False), ("A16", False, True), ("A17", True, True)],
)
def test_a15_a17_existing_merge_cannot_remove_a_middle_with_close(row, with_prev, with_next):
    """Merging all of V=[3,5) (close hook) into P=[0,3) and/or N=[5,9) would remove V:
    NOMERGE (not ENOMEM), nothing changes."""
    mm = space()
    prev = link(mm, 0, 3) if with_prev else None
    vma = link(mm, 3, 5, close=True)
    if with_next:
        link(mm, 5, 9)
    before = ranges(mm)
    assert existing(mm, prev, vma, 3, 5) == (None, MergeState.NOMERGE)
    assert ranges(mm) == before


def test_a18_existing_three_way_degrades_when_next_has_close():
    mm = space()
    prev = link(mm, 0, 3)
    vma = link(mm, 3, 5)
    nxt = link(mm, 5, 9, close=True)
    assert existing(mm, prev, vma, 3, 5) == (prev, MergeState.SUCCESS)
    assert ranges(mm) == [(0, 5, 0), (5, 9, 5)] and vma.detached and not nxt.detached


def test_a19_new_range_extends_prev_with_close_and_keeps_next_with_close():
    mm = space()
    prev = link(mm, 0, 2, close=True)
    link(mm, 5, 7, close=True)
    assert vma_merge_new_range(new_range(mm, 2, 5)) is prev
    assert ranges(mm) == [(0, 5, 0), (5, 7, 5)] and prev.vm_ops is CLOSE


# ---- A.5 merge_existing (A20-A25) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "setup", "prev", "change", "result", "expected", "removed"),
    [
        ("A20 right, partial", {"v": (2, 6, True, True), "n": (6, 9, False, True)}, "v",
         (3, 6), "n", [(2, 3, 2), (3, 9, 3)], []),
        ("A21 right, full", {"v": (2, 6, True, False), "n": (6, 9, False, True)}, None,
         (2, 6), "n", [(2, 9, 2)], ["v"]),
        ("A22 left, partial", {"p": (0, 3, False, True), "v": (3, 7, True, True)}, "p",
         (3, 6), "p", [(0, 6, 0), (6, 7, 6)], []),
        ("A23 left, full", {"p": (0, 3, False, True), "v": (3, 7, True, False)}, "p",
         (3, 7), "p", [(0, 7, 0)], ["v"]),
        ("A24 both", {"p": (0, 3, False, True), "v": (3, 7, True, False),
                      "n": (7, 9, False, False)}, "p", (3, 7), "p", [(0, 9, 0)], ["v", "n"]),
    ],
    ids=lambda x: x if isinstance(x, str) and x[:1] == "A" else "",
)
def test_a20_a24_merge_existing(row, setup, prev, change, result, expected, removed):
    """Part of the middle V (faulted, singular chain) merges into the neighbour it touches;
    ``setup`` gives each VMA's pages, whether it has the anon_vma and whether it has a close
    hook. The target is extended (a close hook there is fine) and adopts V's anon_vma."""
    mm = space()
    av = AnonVma(mm.next_anon_vma_id())
    vmas = {name: link(mm, s, e, anon=av if faulted else None, close=close)
            for name, (s, e, faulted, close) in setup.items()}
    assert existing(mm, vmas.get(prev), vmas["v"], *change) == (vmas[result], MergeState.SUCCESS)
    assert ranges(mm) == expected and vmas[result].anon_vma is av
    assert sorted(name for name, vma in vmas.items() if vma.detached) == sorted(removed)


@pytest.mark.parametrize(("start", "end"), [(4, 5), (5, 6), (6, 7), (4, 7), (4, 6), (5, 6)])
def test_a25_a_range_strictly_inside_never_merges(start, end):
    mm = space()
    link(mm, 0, 3)
    vma = link(mm, 3, 8)
    link(mm, 8, 10)
    assert existing(mm, vma, vma, start, end) == (None, MergeState.NOMERGE)
    assert ranges(mm) == [(0, 3, 0), (3, 8, 3), (8, 10, 8)]


@pytest.mark.parametrize(
    ("row", "setup", "change", "expected"),
    [
        ("A20", [(2, 6, RO), (6, 9, RW)], (3, 6), [(2, 3, "r--p"), (3, 9, "rw-p")]),
        ("A21", [(2, 6, RO), (6, 9, RW)], (2, 6), [(2, 9, "rw-p")]),
        ("A22", [(0, 3, RW), (3, 7, RO)], (3, 6), [(0, 6, "rw-p"), (6, 7, "r--p")]),
        ("A23", [(0, 3, RW), (3, 7, RO)], (3, 7), [(0, 7, "rw-p")]),
        ("A24", [(0, 3, RW), (3, 7, RO), (7, 9, RW)], (3, 7), [(0, 9, "rw-p")]),
        ("A25", [(0, 3, RW), (3, 8, RO), (8, 10, RW)], (4, 7),
         [(0, 3, "rw-p"), (3, 4, "r--p"), (4, 7, "rw-p"), (7, 8, "r--p"), (8, 10, "rw-p")]),
    ],
)
def test_a20_a25_host_mprotect_to_match_a_neighbour(mm, row, setup, change, expected):
    """The merge_existing layouts reached with mprotect: the changed range joins the
    neighbour it touches and now matches; a range strictly inside only splits."""
    for start, end, prot in setup:
        mm.mmap(at(start), (end - start) * P, prot, NOREPLACE)
    start, end = change
    mm.mprotect(at(start), (end - start) * P, RW)
    assert layout(mm) == expected


# ---- A.6 anon_vma compatibility (A26-A32) -------------------------------------------------


def test_a26_existing_three_way_with_two_anon_vmas_degrades_to_prev():
    mm = space()
    av, av2 = AnonVma(mm.next_anon_vma_id()), AnonVma(mm.next_anon_vma_id())
    prev = link(mm, 0, 3, anon=av)
    vma = link(mm, 3, 7)
    nxt = link(mm, 7, 9, anon=av2)
    assert existing(mm, prev, vma, 3, 7) == (prev, MergeState.SUCCESS)
    assert ranges(mm) == [(0, 7, 0), (7, 9, 7)] and nxt.anon_vma is av2


def test_a27_new_range_between_two_anon_vmas_merges_with_prev_only():
    mm = space()
    av, av2 = AnonVma(mm.next_anon_vma_id()), AnonVma(mm.next_anon_vma_id())
    prev = link(mm, 0, 3, anon=av)
    nxt = link(mm, 7, 9, anon=av2)
    assert vma_merge_new_range(new_range(mm, 3, 7)) is prev
    assert ranges(mm) == [(0, 7, 0), (7, 9, 7)] and not nxt.detached


def test_a28_expand_over_a_faulted_next_adopts_its_anon_vma():
    mm = space()
    av = AnonVma(mm.next_anon_vma_id())
    prev = link(mm, 0, 3)
    nxt = link(mm, 3, 5, anon=av)
    assert vma_expand(expansion(mm, prev, 5, 0, nxt))
    assert (ranges(mm), prev.anon_vma, nxt.detached) == ([(0, 5, 0)], av, True)


@pytest.mark.parametrize("faulted", ["next", "middle"])
def test_a29_a30_three_way_adopts_the_anon_vma_of_next_or_middle(faulted):
    mm = space()
    av = AnonVma(mm.next_anon_vma_id())
    prev = link(mm, 0, 3)
    vma = link(mm, 3, 5, anon=av if faulted == "middle" else None)
    link(mm, 5, 8, anon=av if faulted == "next" else None)
    assert existing(mm, prev, vma, 3, 5) == (prev, MergeState.SUCCESS)
    assert (ranges(mm), prev.anon_vma) == ([(0, 8, 0)], av)


def test_a31_prev_extends_over_part_of_a_faulted_middle():
    mm = space()
    av = AnonVma(mm.next_anon_vma_id())
    prev = link(mm, 0, 3)
    vma = link(mm, 3, 8, anon=av)
    assert existing(mm, prev, vma, 3, 5) == (prev, MergeState.SUCCESS)
    assert (span(prev), prev.anon_vma, span(vma)) == ((0, 5, 0), av, (5, 8, 5))


def test_a32_next_extends_over_part_of_a_faulted_middle():
    mm = space()
    av = AnonVma(mm.next_anon_vma_id())
    vma = link(mm, 0, 5, anon=av)
    nxt = link(mm, 5, 8)
    assert existing(mm, vma, vma, 3, 5) == (nxt, MergeState.SUCCESS)
    assert (span(nxt), nxt.anon_vma, span(vma)) == ((3, 8, 3), av, (0, 3, 0))


@pytest.mark.parametrize(
    ("row", "setup", "expected"),
    [
        ("A29", [(0, 3, "rw"), (3, 5, "ro"), (5, 8, "faulted")], [(0, 8, "rw-p")]),
        ("A30", [(0, 3, "rw"), (3, 5, "faulted ro"), (5, 8, "rw")], [(0, 8, "rw-p")]),
        ("A31", [(0, 3, "rw"), (3, 8, "faulted ro")], [(0, 5, "rw-p"), (5, 8, "r--p")]),
        ("A32", [(0, 5, "faulted ro"), (5, 8, "rw")], [(0, 3, "r--p"), (3, 8, "rw-p")]),
    ],
)
def test_a29_a32_host_layouts(mm, row, setup, expected):
    """The [H~] layouts of A29-A32: pages [3,5) are made RW to match their neighbours. Which
    VMA has the anon_vma is invisible on the host; "faulted ro" is written while RW and then
    made read-only (it keeps its anon_vma and "ac", so it matches RW again afterwards)."""
    for start, end, kind in setup:
        mm.mmap(at(start), (end - start) * P, RO if kind == "ro" else RW, NOREPLACE)
        if kind.startswith("faulted"):
            mm.touch(at(start), write=True)
        if kind.endswith(" ro"):
            mm.mprotect(at(start), (end - start) * P, RO)
    mm.mprotect(at(3), 2 * P, RW)
    assert layout(mm) == expected


# ---- A.7 failure rollback (A33-A34) -------------------------------------------------------


def test_a33_failed_existing_merge_undoes_the_anon_vma_clone():
    """The harness's stub unlink only marks the clone undone (its P.anon stays AV); the
    kernel's unlink_anon_vmas() clears the pointer, and so does the model."""
    mm = space()
    av = AnonVma(mm.next_anon_vma_id())
    prev = link(mm, 0, 3)
    vma = link(mm, 3, 5, anon=av)
    with mm.inject("merge_alloc"):
        assert existing(mm, prev, vma, 3, 5) == (None, MergeState.ERROR_NOMEM)
    assert (ranges(mm), prev.anon_vma, vma.anon_vma) == ([(0, 3, 0), (3, 5, 3)], None, av)


def test_a34_failed_expand_undoes_the_anon_vma_clone():
    mm = space()
    av = AnonVma(mm.next_anon_vma_id())
    prev = link(mm, 0, 3)
    vma = link(mm, 3, 5, anon=av)
    vmg = expansion(mm, prev, 5, 3, vma)
    with mm.inject("merge_alloc"):
        assert not vma_expand(vmg)
    assert vmg.state is MergeState.ERROR_NOMEM
    assert (ranges(mm), prev.anon_vma, vma.detached) == ([(0, 3, 0), (3, 5, 3)], None, False)


# ---- A.8 extend, just-expand, copy (A35-A39) ----------------------------------------------


def test_a35_merge_extend_reaches_and_takes_in_the_next_vma():
    mm = space()
    vma = link(mm, 0, 1)
    nxt = link(mm, 3, 4)
    assert vma_merge_extend(mm, vma, 2 * P) is vma
    assert (ranges(mm), nxt.detached, mm.map_count) == ([(0, 4, 0)], True, 1)


def test_a35_host_mremap_grows_into_the_next_vma(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mmap(at(3), P, RW, NOREPLACE)
    assert mm.mremap(at(0), P, 3 * P) == at(0)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_a36_just_expand_extends_prev_and_never_looks_right():
    """The brk-style merge: only prev may grow, even when a compatible next touches."""
    mm = space()
    far_left = link(mm, 0, 2)
    prev = link(mm, 3, 5)
    nxt = link(mm, 9, 10)
    vmg = new_range(mm, 5, 9)
    vmg.just_expand = True
    assert vma_merge_new_range(vmg) is prev and vmg.state is MergeState.SUCCESS
    assert ranges(mm) == [(0, 2, 0), (3, 9, 3), (9, 10, 9)]
    assert not far_left.detached and not nxt.detached


def test_a38_copy_vma_without_a_neighbour_makes_a_new_vma():
    mm = space()
    vma = link(mm, 3, 5)
    result = copy_vma(mm, vma, 0, 2 * P, 0)
    assert result is not None
    new, source = result
    assert new is not vma and source is vma
    assert ranges(mm) == [(0, 2, 0), (3, 5, 3)]


def test_a39_copy_vma_merges_into_the_next_vma():
    mm = space()
    vma = link(mm, 0, 2)
    nxt = link(mm, 6, 8)
    result = copy_vma(mm, vma, 4 * P, 2 * P, 4)
    assert result is not None and result[0] is nxt
    assert span(nxt) == (4, 8, 4)


@pytest.mark.parametrize("faulted", [False, True])
def test_a39_host_move_next_to_a_compatible_vma(mm, faulted):
    """An unfaulted anonymous VMA takes its new address as pgoff (copy_vma) and merges at
    the target; a faulted one keeps its pgoff, so it does not."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(6), 2 * P, RW, NOREPLACE)
    if faulted:
        mm.touch(at(0), write=True)
    assert mm.mremap(at(0), 2 * P, 2 * P, FIXED_MOVE, at(4)) == at(4)
    assert layout(mm) == ([(4, 6, "rw-p"), (6, 8, "rw-p")] if faulted else [(4, 8, "rw-p")])
