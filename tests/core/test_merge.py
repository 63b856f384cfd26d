"""Merging and splitting: vma_merge_new_range, vma_merge_existing_range, anon_vma
compatibility, pgoff contiguity and VM_ACCOUNT — observed through maps and VmFlags."""

from __future__ import annotations

import vmamodel as v

from .util import FIXED, NOREPLACE, RO, RW, SHANON, P, at, flags_of, layout, offsets


def test_adjacent_new_ranges_merge_both_ways(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mmap(at(2), P, RW, NOREPLACE)
    assert len(layout(mm)) == 2
    mm.mmap(at(1), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 3, "rw-p")]


def test_harness_mmap_region_basic(mm):
    """A37: four maps on an empty mm give two VMAs."""
    for page, count in ((0x300, 3), (0x250, 3), (0x303, 3), (0x24D, 3)):
        assert mm.mmap(at(page), count * P, RW, NOREPLACE) == at(page)
    assert layout(mm) == [(0x24D, 0x253, "rw-p"), (0x300, 0x306, "rw-p")]


def test_mprotect_middle_splits_and_restoring_remerges(mm):
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.mprotect(at(1), P, RO)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "r--p"), (2, 3, "rw-p")]
    mm.mprotect(at(1), P, RW)
    assert layout(mm) == [(0, 3, "rw-p")]


def test_faulted_split_and_restore_remerges(mm):
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.mprotect(at(1), P, RO)
    mm.mprotect(at(1), P, RW)
    assert layout(mm) == [(0, 3, "rw-p")]


def test_separately_faulted_vmas_fill_gap_merges_with_prev_only(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mmap(at(2), P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.touch(at(2), write=True)
    mm.mmap(at(1), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 3, "rw-p")]


def test_read_faulted_regions_merge_freely(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mmap(at(2), P, RW, NOREPLACE)
    mm.touch(at(0))
    mm.touch(at(2))
    mm.mmap(at(1), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 3, "rw-p")]


def test_unfaulted_new_range_merges_with_faulted_neighbours(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.mmap(at(1), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 2, "rw-p")]
    mm.mmap(at(3), P, RW, NOREPLACE)
    mm.mmap(at(2), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_fault_next_to_compatible_neighbour_reuses_its_anon_vma(mm):
    """find_mergeable_anon_vma(): faulting a VMA that differs from a faulted neighbour only in
    protection shares its anon_vma, so they merge once the protections match."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mprotect(at(1), P, RO)
    mm.touch(at(0), write=True)
    mm.mprotect(at(1), P, RW)
    mm.touch(at(1), write=True)  # the anon_vma is already shared: one VMA
    assert layout(mm) == [(0, 2, "rw-p")]
    mm.mmap(at(4), P, RW, NOREPLACE)
    mm.mprotect(at(4), P, RO)
    mm.mmap(at(3), P, RW, NOREPLACE)
    mm.touch(at(3), write=True)
    mm.mprotect(at(4), P, RW)
    assert layout(mm) == [(0, 2, "rw-p"), (3, 5, "rw-p")]


def test_three_way_with_two_anon_vmas_merges_left_only(mm):
    """A26/A27: prev and next faulted apart, the middle mprotected to match."""
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.mprotect(at(1), P, RO)
    mm.touch(at(0), write=True)
    mm.touch(at(2), write=True)
    mm.mprotect(at(1), P, RW)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 3, "rw-p")]


def test_private_and_shared_do_not_merge(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mmap(at(1), P, RW, SHANON)
    mm.mmap(at(2), P, RW, SHANON)
    assert [line[2] for line in layout(mm)] == ["rw-p", "rw-s", "rw-s"]


def test_shared_anonymous_shows_dev_zero_and_offset_after_split(mm):
    mm.mmap(at(0), 4 * P, RW, SHANON)
    mm.mprotect(at(1), P, RO)
    lines = mm.maps().splitlines()
    assert all(line.endswith("/dev/zero (deleted)") for line in lines)
    assert offsets(mm) == [0, 1, 2]
    assert flags_of(mm)[0] == "rd wr sh mr mw me ms"


def test_memfd_private_merges_only_with_contiguous_offsets(mm):
    f = v.memfd_create("contig", 16 * P)
    flags = v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE
    mm.mmap(at(0), 2 * P, RW, flags, f, 0)
    mm.mmap(at(2), 2 * P, RW, flags, f, 2 * P)
    assert layout(mm) == [(0, 4, "rw-p")]
    mm.mmap(at(4), 2 * P, RW, flags, f, 8 * P)
    assert layout(mm) == [(0, 4, "rw-p"), (4, 6, "rw-p")]
    assert offsets(mm) == [0, 8]


def test_two_memfds_never_merge(mm):
    a, b = v.memfd_create("a", 4 * P), v.memfd_create("b", 4 * P)
    flags = v.MAP_SHARED | v.MAP_FIXED_NOREPLACE
    mm.mmap(at(0), P, RW, flags, a, 0)
    mm.mmap(at(1), P, RW, flags, b, P)
    assert len(layout(mm)) == 2


def test_shared_memfd_flags(mm):
    f = v.memfd_create("shared", 4 * P)
    mm.mmap(at(0), 2 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    assert flags_of(mm) == ["rd wr sh mr mw me ms"]
    assert mm.maps().splitlines()[0].endswith(" /memfd:shared (deleted)")


class TestAccount:
    """VM_ACCOUNT ("ac"): accountable_mapping() at mmap, mprotect_fixup() on a change, as the
    host kernel shows it."""

    def test_private_writable_is_accounted_read_only_is_not(self, mm):
        mm.mmap(at(0), P, RW, NOREPLACE)
        mm.mmap(at(2), P, RO, NOREPLACE)
        assert flags_of(mm) == ["rd wr mr mw me ac", "rd mr mw me"]

    def test_unfaulted_made_read_only_drops_ac_and_merges(self, mm):
        mm.mmap(at(0), P, RO, NOREPLACE)
        mm.mmap(at(1), P, RW, NOREPLACE)
        mm.mprotect(at(1), P, RO)
        assert layout(mm) == [(0, 2, "r--p")]
        assert flags_of(mm) == ["rd mr mw me"]

    def test_faulted_made_read_only_keeps_ac_and_does_not_merge(self, mm):
        mm.mmap(at(0), P, RO, NOREPLACE)
        mm.mmap(at(1), P, RW, NOREPLACE)
        mm.touch(at(1), write=True)
        mm.mprotect(at(1), P, RO)
        assert layout(mm) == [(0, 1, "r--p"), (1, 2, "r--p")]
        assert flags_of(mm) == ["rd mr mw me", "rd mr mw me ac"]

    def test_private_memfd_made_read_only_keeps_ac(self, mm):
        f = v.memfd_create("acct", 4 * P)
        mm.mmap(at(0), P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f)
        mm.mprotect(at(0), P, RO)
        assert flags_of(mm) == ["rd mr mw me ac"]

    def test_read_only_made_writable_gains_ac(self, mm):
        mm.mmap(at(0), P, RO, NOREPLACE)
        mm.mprotect(at(0), P, RW)
        assert flags_of(mm) == ["rd wr mr mw me ac"]

    def test_noreserve_is_not_accounted(self, mm):
        mm.mmap(at(0), P, RW, NOREPLACE | v.MAP_NORESERVE)
        assert flags_of(mm) == ["rd wr mr mw me nr"]


def test_map_flags_show_in_vmflags(mm):
    mm.mmap(at(0), P, RW, NOREPLACE | v.MAP_STACK)
    mm.mmap(at(2), P, RW, NOREPLACE | v.MAP_SYNC)
    mm.mmap(at(4), P, RW, v.MAP_DROPPABLE | v.MAP_ANONYMOUS | v.MAP_FIXED_NOREPLACE)
    mm.mmap(at(6), P, RW, NOREPLACE | v.MAP_GROWSDOWN)
    assert flags_of(mm) == [
        "rd wr mr mw me ac nh",
        "rd wr mr mw me ac sf",
        "rd wr mr mw me nr wf dd dp",
        "rd wr mr mw me gd ac",
    ]


def test_ltp_mprotect05_shared_file_pieces_remerge(mm, regular_file):
    """F1: five pages R/X/R/W/R of a shared file, then all R: one VMA."""
    f = regular_file(v.O_RDWR, 5 * P)
    mm.mmap(at(0), 5 * P, RO, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.mprotect(at(1), P, v.PROT_EXEC)
    mm.mprotect(at(3), P, v.PROT_WRITE)
    assert len(layout(mm)) == 5
    mm.mprotect(at(1), 4 * P, RO)
    assert layout(mm) == [(0, 5, "r--s")]
    assert offsets(mm) == [0]


def test_fixed_replacement_merges_with_both_neighbours(mm):
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.mmap(at(1), P, RO, FIXED)
    assert len(layout(mm)) == 3
    mm.mmap(at(1), P, RW, FIXED)
    assert layout(mm) == [(0, 3, "rw-p")]
