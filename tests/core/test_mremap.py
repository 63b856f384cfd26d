"""mremap(2): every argument check and its errno, shrink, growth in place, MREMAP_FIXED moves
(one VMA or several), MREMAP_DONTUNMAP, old_len 0, merging at the destination, accounting
limits and max_map_count — on the model and on the host.

The host runs as root (CAP_IPC_LOCK), so RLIMIT_MEMLOCK cannot refuse there, and no host
file has driver hooks; those rules are model-only tests at the end, as are the failure
points. A move without MREMAP_FIXED goes where the kernel chooses, outside the host's
arena: the host child refuses it with ValueError, which the tests use as "it moved".
"""

from __future__ import annotations

import errno
import resource
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import vmamodel as v
from vmamodel.host import host_model_kwargs

from . import test_placement as placement
from .util import (
    FIXED,
    NOREPLACE,
    RO,
    RW,
    SHANON,
    P,
    at,
    flags_of,
    layout,
    offsets,
    vm_stats,
)

M, F, D = v.MREMAP_MAYMOVE, v.MREMAP_FIXED, v.MREMAP_DONTUNMAP
LOCKED = NOREPLACE | v.MAP_LOCKED
TASK_SIZE = v.TASK_SIZE


def _errno(fn: Callable[..., Any], *args: Any) -> int:
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno or 0


def _refused(mm: Any, *args: Any) -> int:
    """The errno of a failing mremap that must leave the address space as it was."""
    before = mm.smaps()
    err = _errno(mm.mremap, *args)
    assert mm.smaps() == before
    return err


def two_vmas(mm: Any) -> None:
    """[0,2) rw and [2,4) r: two VMAs that touch but differ."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(2), 2 * P, RO, NOREPLACE)


# -- argument checks (check_mremap_params), in the kernel's order -------------------------


def test_unknown_flag_is_einval(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 2 * P, 2 * P, 8, 0) == errno.EINVAL


def test_unknown_flag_wins_over_unaligned_address(mm):
    assert _refused(mm, at(0) + 1, 0, 0, M | 0x10, 0) == errno.EINVAL


def test_unaligned_old_address_is_einval(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0) + 1, P, 2 * P, M, 0) == errno.EINVAL


@pytest.mark.parametrize("new_len", [0, (1 << 64) - 1, (1 << 64) - P + 1])
def test_new_len_zero_after_page_align_is_einval(mm, new_len):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 2 * P, new_len, 0, 0) == errno.EINVAL


def test_new_len_above_task_size_is_einval(mm):
    """Checked up front in 6.18, before the VMA is looked at (no ENOMEM from placement)."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 2 * P, TASK_SIZE + P, M, 0) == errno.EINVAL
    assert _refused(mm, at(5), 2 * P, TASK_SIZE + P, 0, 0) == errno.EINVAL


@pytest.mark.parametrize("flags", [M | F, M | F | D, M | D])
def test_new_range_past_task_size_is_einval(mm, flags):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 2 * P, 2 * P, flags, TASK_SIZE - P) == errno.EINVAL


@pytest.mark.parametrize("flags", [M | F, M | D])
def test_unaligned_new_address_is_einval(mm, flags):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 2 * P, 2 * P, flags, at(10) + 1) == errno.EINVAL


@pytest.mark.parametrize("flags", [F, D, F | D])
def test_new_address_without_maymove_is_einval(mm, flags):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 2 * P, 2 * P, flags, at(10)) == errno.EINVAL


def test_dontunmap_cannot_resize(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 2 * P, 3 * P, M | F | D, at(10)) == errno.EINVAL
    assert _refused(mm, at(0), 4 * P, 2 * P, M | D, at(10)) == errno.EINVAL


def test_dontunmap_compares_the_aligned_lengths(mm):
    """6.18 page-aligns both lengths before comparing them."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 2 * P - 1, M | F | D, at(10)) == at(10)
    assert layout(mm) == [(0, 2, "rw-p"), (10, 12, "rw-p")]


@pytest.mark.parametrize(("old", "new_addr", "new_len"), [(4, 3, 4), (4, 1, 1), (2, 0, 2)])
def test_overlapping_old_and_new_ranges_are_einval(mm, old, new_addr, new_len):
    mm.mmap(at(1), 4 * P, RW, NOREPLACE)
    assert _refused(mm, at(1), old * P, new_len * P, M | F, at(new_addr)) == errno.EINVAL


def test_touching_old_and_new_ranges_do_not_overlap(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 2 * P, M | F, at(2)) == at(2)
    assert layout(mm) == [(2, 4, "rw-p")]


# -- the VMA at the old address (check_prep_vma) -------------------------------------------


@pytest.mark.parametrize(("old", "new", "flags"), [(2, 2, 0), (2, 1, 0), (2, 3, M), (2, 2, M | F)])
def test_no_vma_at_the_old_address_is_efault(mm, old, new, flags):
    mm.mmap(at(1), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), old * P, new * P, flags, at(10)) == errno.EFAULT


def test_old_len_zero_of_a_private_mapping_is_einval(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert _refused(mm, at(1), 0, P, M | F, at(10)) == errno.EINVAL
    assert _refused(mm, at(1), 0, P, 0, 0) == errno.EINVAL


def test_growth_across_the_end_of_the_vma_is_efault(mm):
    two_vmas(mm)
    assert _refused(mm, at(0), 3 * P, 5 * P, M, 0) == errno.EFAULT


def test_growth_into_a_hole_after_the_range_end_is_efault(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 3 * P, 4 * P, 0, 0) == errno.EFAULT


def test_move_across_the_end_of_the_vma_is_efault(mm):
    two_vmas(mm)
    assert _refused(mm, at(1), 2 * P, 3 * P, M | F, at(10)) == errno.EFAULT


def test_move_with_shrink_checks_only_what_moves(mm):
    """A shrink and move may unmap a tail that crosses VMAs; only the part that moves must
    lie in the first VMA."""
    two_vmas(mm)
    assert mm.mremap(at(0), 4 * P, 2 * P, M | F, at(20)) == at(20)
    assert layout(mm) == [(20, 22, "rw-p")]


def test_move_with_shrink_that_still_crosses_is_efault(mm):
    two_vmas(mm)
    assert _refused(mm, at(0), 4 * P, 3 * P, M | F, at(20)) == errno.EFAULT


# -- no resize and shrink (mremap_at) --------------------------------------------------------


def test_same_size_without_flags_returns_the_address_even_across_vmas(mm):
    two_vmas(mm)
    before = mm.smaps()
    assert mm.mremap(at(0), 6 * P, 6 * P, 0, 0) == at(0)
    assert mm.smaps() == before


def test_same_size_in_a_hole_is_efault(mm):
    mm.mmap(at(1), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 3 * P, 3 * P, 0, 0) == errno.EFAULT


def test_shrink_unmaps_the_tail(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 4 * P, P + 1, M, 0) == at(0)
    assert layout(mm) == [(0, 2, "rw-p")]


def test_shrink_of_the_middle_splits(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(1), 2 * P, P, 0, 0) == at(1)
    assert layout(mm) == [(0, 2, "rw-p"), (3, 4, "rw-p")]


def test_shrink_unmaps_across_vmas_and_holes(mm):
    """No check beyond the VMA at addr: the tail is munmap()ed whatever lies there."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RO, NOREPLACE)
    assert mm.mremap(at(0), 5 * P, P, 0, 0) == at(0)
    assert layout(mm) == [(0, 1, "rw-p")]


def test_shrink_starting_in_a_hole_is_efault(mm):
    mm.mmap(at(1), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 3 * P, P, 0, 0) == errno.EFAULT


# -- growth in place (expand_vma, vma_merge_extend) -----------------------------------------


def test_grow_in_place_when_the_space_after_is_free(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 3 * P, 0, 0) == at(0)
    assert layout(mm) == [(0, 3, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me ac"]


def test_grow_in_place_of_the_tail_of_a_vma(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(2), 2 * P, 4 * P, 0, 0) == at(2)
    assert layout(mm) == [(0, 6, "rw-p")]


def test_grow_in_place_merges_with_the_next_vma_it_reaches(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(4), 2 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 4 * P, 0, 0) == at(0)
    assert layout(mm) == [(0, 6, "rw-p")]


def test_grow_in_place_short_of_the_next_vma_does_not_merge(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(4), 2 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 3 * P, 0, 0) == at(0)
    assert layout(mm) == [(0, 3, "rw-p"), (4, 6, "rw-p")]


def test_grow_in_place_into_an_incompatible_next_does_not_merge(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(4), 2 * P, RO, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 4 * P, 0, 0) == at(0)
    assert layout(mm) == [(0, 4, "rw-p"), (4, 6, "r--p")]


def test_grow_in_place_between_separately_faulted_vmas_does_not_merge(mm):
    """The grown VMA and the next carry different anon_vmas."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(4), 2 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.touch(at(4), write=True)
    assert mm.mremap(at(0), 2 * P, 4 * P, 0, 0) == at(0)
    assert layout(mm) == [(0, 4, "rw-p"), (4, 6, "rw-p")]


def test_grow_in_place_of_an_unfaulted_vma_into_a_faulted_next_merges(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(4), 2 * P, RW, NOREPLACE)
    mm.touch(at(4), write=True)
    assert mm.mremap(at(0), 2 * P, 4 * P, 0, 0) == at(0)
    assert layout(mm) == [(0, 6, "rw-p")]


def test_grow_blocked_by_the_next_vma_without_maymove_is_enomem(mm):
    two_vmas(mm)
    assert _refused(mm, at(0), 2 * P, 3 * P, 0, 0) == errno.ENOMEM


def test_grow_of_the_middle_of_a_vma_without_maymove_is_enomem(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 2 * P, 3 * P, 0, 0) == errno.ENOMEM


def test_grow_in_place_of_a_locked_vma_stays_locked(mm):
    mm.mmap(at(0), 2 * P, RW, LOCKED)
    assert mm.mremap(at(0), 2 * P, 4 * P, 0, 0) == at(0)
    assert layout(mm) == [(0, 4, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me lo ac"]


def test_grow_of_shared_memory_keeps_the_file_offsets(mm):
    mm.mmap(at(0), 2 * P, RW, SHANON)
    assert mm.mremap(at(0), 2 * P, 5 * P, 0, 0) == at(0)
    assert layout(mm) == [(0, 5, "rw-s")]
    assert offsets(mm) == [0]


def test_grow_with_maymove_that_cannot_grow_in_place_moves(mm):
    """The kernel places the grown copy itself (top-down, far from the arena)."""
    two_vmas(mm)
    try:
        new = mm.mremap(at(0), 2 * P, 3 * P, M, 0)
    except ValueError:  # the host child refused a placement outside its arena
        new = None
    assert new != at(0)
    assert layout(mm)[0] == (2, 4, "r--p")


# -- moves the kernel places (whole-process runner; see test_placement.py) -----------------

PRIVATE_ANON = v.MAP_PRIVATE | v.MAP_ANONYMOUS
PMD = placement.PMD
fill_top, spans, thp_top_down = placement.fill_top, placement.spans, placement.thp_top_down
#: The runner-or-seeded-model factory of test_placement.py, as fixture ``placed``.
placed = placement.placed


@pytest.mark.host
def test_a_move_the_kernel_places_goes_top_down_below_the_source(placed):
    """vrm_set_new_addr(): like mmap(NULL, new_len); the source is still mapped then."""
    space = placed()
    top = fill_top(space)
    old = space.mmap(0, 2 * P, RW, PRIVATE_ANON)
    assert old == top - 2 * P
    new = space.mremap(old, 2 * P, 3 * P, M, 0)
    assert new == old - 3 * P
    assert (new, new + 3 * P) in spans(space)
    assert not any(start <= old < end for start, end in spans(space))


@pytest.mark.host
def test_a_move_to_a_pmd_multiple_is_thp_aligned(placed):
    space = placed()
    fill_top(space)
    old = space.mmap(0, 2 * P, RW, PRIVATE_ANON)
    assert space.mremap(old, 2 * P, PMD, M, 0) == thp_top_down(old, PMD)


@pytest.mark.host
def test_a_move_of_shared_memory_is_not_thp_aligned(placed):
    space = placed()
    fill_top(space)
    old = space.mmap(0, 2 * P, RW, v.MAP_SHARED | v.MAP_ANONYMOUS)
    assert space.mremap(old, 2 * P, PMD, M, 0) == old - PMD


@pytest.mark.host
def test_dontunmap_with_a_taken_hint_goes_top_down(placed):
    space = placed()
    fill_top(space)
    old = space.mmap(0, 2 * P, RW, PRIVATE_ANON)
    taken = space.mmap(0, 2 * P, RO, PRIVATE_ANON)
    assert space.mremap(old, 2 * P, 2 * P, M | D, taken) == taken - 2 * P
    assert any(start <= old and old + 2 * P <= end for start, end in spans(space))


# -- memory limits ------------------------------------------------------------------------------


def _limit_address_space(mm: Any, backend: Any, extra_pages: int) -> None:
    """RLIMIT_AS = what is mapped now + extra_pages (the host child's own memory counts)."""
    if backend.is_host:
        with open(f"/proc/{mm.pid}/status") as status:
            vmsize = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
        limit = vmsize * 1024 + extra_pages * P
        resource.prlimit(mm.pid, resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    else:
        mm.rlimit_as = (mm.total_vm + extra_pages) * P


def test_growth_past_rlimit_as_is_enomem(mm, backend):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    _limit_address_space(mm, backend, 4)
    assert _refused(mm, at(0), 2 * P, 7 * P, 0, 0) == errno.ENOMEM
    assert mm.mremap(at(0), 2 * P, 6 * P, 0, 0) == at(0)


def test_dontunmap_needs_rlimit_as_room_for_a_second_copy(mm, backend):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    _limit_address_space(mm, backend, 1)
    assert _refused(mm, at(0), 2 * P, 2 * P, M | F | D, at(10)) == errno.ENOMEM
    assert mm.mremap(at(0), 2 * P, 2 * P, M | F, at(10)) == at(10)


def test_growth_of_an_accounted_mapping_beyond_ram_is_enomem(mm):
    """The heuristic overcommit refuses one charge larger than RAM + swap (24 GiB here)."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 2 * P, 32 << 30, 0, 0) == errno.ENOMEM
    assert mm.mremap(at(0), 2 * P, 8 << 30, 0, 0) == at(0)


def test_growth_of_an_unaccounted_mapping_is_not_charged(mm):
    mm.mmap(at(0), 2 * P, RO, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 32 << 30, 0, 0) == at(0)
    assert flags_of(mm) == ["rd mr mw me"]


# -- moves with MREMAP_FIXED (mremap_to, move_vma, copy_vma) ---------------------------------


def test_fixed_move_of_a_whole_vma(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 2 * P, M | F, at(10)) == at(10)
    assert layout(mm) == [(10, 12, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me ac"]


def test_fixed_move_of_part_of_a_vma_splits_it(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(1), 2 * P, 2 * P, M | F, at(10)) == at(10)
    assert layout(mm) == [(0, 1, "rw-p"), (3, 4, "rw-p"), (10, 12, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me ac"] * 3


@pytest.mark.parametrize(
    ("old", "want"),
    [
        (0, [(2, 4, "rw-p"), (10, 12, "rw-p")]),  # the head moves: the tail stays accounted
        (2, [(0, 2, "rw-p"), (10, 12, "rw-p")]),  # the tail moves: the head stays accounted
    ],
)
def test_the_piece_a_move_leaves_keeps_vm_account(mm, old, want):
    """unmap_source_vma(): VM_ACCOUNT is set again on the piece on each side of the hole."""
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(old), 2 * P, 2 * P, M | F, at(10)) == at(10)
    assert layout(mm) == want
    assert flags_of(mm) == ["rd wr mr mw me ac"] * 2


def test_a_growing_move_that_merges_into_its_source_splits_it_twice(mm):
    """copy_vma() merges the target just below the source into the source VMA itself (an
    unfaulted anonymous VMA takes the new address as its pgoff), then the source range is
    unmapped from the middle of the merged VMA: both pieces stay accounted."""
    mm.mmap(at(4), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(4), 2 * P, 3 * P, M | F, at(1)) == at(1)
    assert layout(mm) == [(1, 4, "rw-p"), (6, 8, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me ac"] * 2


def test_fixed_move_unmaps_what_was_at_the_target(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.mmap(at(10), 6 * P, RO, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 2 * P, M | F, at(12)) == at(12)
    assert layout(mm) == [(2, 4, "rw-p"), (10, 12, "r--p"), (12, 14, "rw-p"), (14, 16, "r--p")]


def test_fixed_grow_and_move(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 4 * P, 6 * P, M | F, at(12)) == at(12)
    assert layout(mm) == [(12, 18, "rw-p")]


def test_fixed_shrink_and_move(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(1), 3 * P, P, M | F, at(12)) == at(12)
    assert layout(mm) == [(0, 1, "rw-p"), (12, 13, "rw-p")]


def test_fixed_move_of_a_locked_vma_stays_locked(mm):
    mm.mmap(at(0), 2 * P, RW, LOCKED)
    assert mm.mremap(at(0), 2 * P, 4 * P, M | F, at(10)) == at(10)
    assert layout(mm) == [(10, 14, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me lo ac"]


def test_fixed_move_keeps_file_offsets(mm, memfd):
    file = memfd("mremap", 8 * P)
    mm.mmap(at(0), 4 * P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, file, 2 * P)
    assert mm.mremap(at(1), 2 * P, 2 * P, M | F, at(10)) == at(10)
    assert offsets(mm) == [2, 5, 3]


def test_fixed_move_of_shared_memory_keeps_its_file_offsets(mm):
    mm.mmap(at(0), 4 * P, RW, SHANON)
    assert mm.mremap(at(2), 2 * P, 2 * P, M | F, at(10)) == at(10)
    assert layout(mm) == [(0, 2, "rw-s"), (10, 12, "rw-s")]
    assert offsets(mm) == [0, 2]


def test_fixed_unmap_of_the_target_stays_when_the_source_then_goes_missing(mm):
    """Partial effect: the target is unmapped first; here it held the source, which is
    then gone (EFAULT), and the hole stays."""
    mm.mmap(at(0), 4 * P, RW, SHANON)
    assert _errno(mm.mremap, at(1), 0, 2 * P, M | F, at(1)) == errno.EFAULT
    assert layout(mm) == [(0, 1, "rw-s"), (3, 4, "rw-s")]


# -- merging at the destination (copy_vma, vma_merge_copied_range) -------------------------


def test_unfaulted_move_takes_the_new_address_as_pgoff_and_merges(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(10), 2 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 2 * P, M | F, at(12)) == at(12)
    assert layout(mm) == [(10, 14, "rw-p")]


def test_faulted_move_keeps_its_pgoff_and_does_not_merge(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.mmap(at(10), 2 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 2 * P, M | F, at(12)) == at(12)
    assert layout(mm) == [(10, 12, "rw-p"), (12, 14, "rw-p")]


def test_faulted_move_back_home_merges_again(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.mremap(at(2), 2 * P, 2 * P, M | F, at(10))
    assert layout(mm) == [(0, 2, "rw-p"), (10, 12, "rw-p")]
    assert mm.mremap(at(10), 2 * P, 2 * P, M | F, at(2)) == at(2)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_unfaulted_move_next_to_its_own_source_merges_into_it(mm):
    """copy_vma() merges the copy into the source VMA itself; the unmap then leaves the
    merged VMA's tail."""
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 2 * P, M | F, at(4)) == at(4)
    assert layout(mm) == [(2, 6, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me ac"]


def test_faulted_move_next_to_its_own_source_does_not_merge(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    assert mm.mremap(at(0), 2 * P, 2 * P, M | F, at(4)) == at(4)
    assert layout(mm) == [(2, 4, "rw-p"), (4, 6, "rw-p")]


def test_move_into_a_gap_merges_with_both_neighbours(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(4), 2 * P, RW, NOREPLACE)
    mm.mmap(at(10), 2 * P, RW, NOREPLACE)
    assert mm.mremap(at(10), 2 * P, 2 * P, M | F, at(2)) == at(2)
    assert layout(mm) == [(0, 6, "rw-p")]


# -- several VMAs at once (remap_move) ------------------------------------------------------


def test_fixed_move_of_several_vmas_keeps_the_gaps(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RO, NOREPLACE)
    assert mm.mremap(at(0), 5 * P, 5 * P, M | F, at(20)) == at(20)
    assert layout(mm) == [(20, 22, "rw-p"), (23, 25, "r--p")]


def test_fixed_move_of_several_vmas_leaves_what_lies_in_the_target_gaps(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RO, NOREPLACE)
    mm.mmap(at(20), 8 * P, v.PROT_EXEC, NOREPLACE)
    assert mm.mremap(at(0), 5 * P, 5 * P, M | F, at(21)) == at(21)
    assert layout(mm) == [
        (20, 21, "--xp"), (21, 23, "rw-p"), (23, 24, "--xp"), (24, 26, "r--p"), (26, 28, "--xp"),
    ]


def test_fixed_move_of_several_vmas_splits_the_ends(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 4 * P, RO, NOREPLACE)
    assert mm.mremap(at(1), 4 * P, 4 * P, M | F, at(21)) == at(21)
    assert layout(mm) == [(0, 1, "rw-p"), (5, 7, "r--p"), (21, 22, "rw-p"), (23, 25, "r--p")]


def test_fixed_move_of_several_vmas_with_dontunmap(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 4 * P, RO, NOREPLACE)
    assert mm.mremap(at(0), 5 * P, 5 * P, M | F | D, at(21)) == at(21)
    assert layout(mm) == [(0, 2, "rw-p"), (3, 7, "r--p"), (21, 23, "rw-p"), (24, 26, "r--p")]


def test_fixed_move_of_several_vmas_includes_shared_memory(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 4 * P, RO, SHANON)
    assert mm.mremap(at(0), 5 * P, 5 * P, M | F, at(21)) == at(21)
    assert layout(mm) == [(5, 7, "r--s"), (21, 23, "rw-p"), (24, 26, "r--s")]
    assert offsets(mm) == [2, 0, 0]


def test_fixed_move_starting_in_a_hole_is_efault(mm):
    mm.mmap(at(1), 2 * P, RW, NOREPLACE)
    assert _refused(mm, at(0), 3 * P, 3 * P, M | F, at(20)) == errno.EFAULT


def test_fixed_move_of_nothing_is_efault(mm):
    assert _refused(mm, at(0), 3 * P, 3 * P, M | F, at(20)) == errno.EFAULT


def test_fixed_resize_across_several_vmas_is_efault(mm):
    """Only an unchanged length may move several VMAs."""
    two_vmas(mm)
    assert _refused(mm, at(0), 4 * P, 5 * P, M | F, at(20)) == errno.EFAULT


def test_statistics_follow_locked_moves(mm, backend):
    """vrm_stat_account(): a move adds the new length, the source unmap takes the old one
    away; MREMAP_DONTUNMAP clears VM_LOCKED on the old VMA without lowering locked_vm, so
    unmapping it later leaves locked_vm high (the kernel's own bookkeeping)."""
    base = vm_stats(mm, backend)

    def delta() -> tuple[int, ...]:
        return tuple(now - then for now, then in zip(vm_stats(mm, backend), base, strict=True))

    mm.mmap(at(0), 2 * P, RW, LOCKED)
    mm.mremap(at(0), 2 * P, 2 * P, M | F, at(10))
    assert delta() == (2, 2, 2)
    mm.mremap(at(10), 2 * P, 2 * P, M | F | D, at(20))
    assert delta() == (4, 4, 4)
    mm.mremap(at(20), 2 * P, 4 * P, 0, 0)
    assert delta() == (6, 6, 6)
    mm.munmap(at(10), 2 * P)
    assert delta() == (6, 4, 4)


# -- MREMAP_DONTUNMAP ------------------------------------------------------------------------------


def test_dontunmap_leaves_the_old_vma_mapped_and_accounted(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    assert mm.mremap(at(0), 2 * P, 2 * P, M | F | D, at(10)) == at(10)
    assert layout(mm) == [(0, 2, "rw-p"), (10, 12, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me ac"] * 2


def test_dontunmap_of_part_of_a_vma_does_not_split_it(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(1), 2 * P, 2 * P, M | F | D, at(10)) == at(10)
    assert layout(mm) == [(0, 4, "rw-p"), (10, 12, "rw-p")]


def test_dontunmap_clears_mlock_on_the_whole_old_vma(mm):
    mm.mmap(at(0), 4 * P, RW, LOCKED)
    assert mm.mremap(at(1), 2 * P, 2 * P, M | F | D, at(10)) == at(10)
    assert layout(mm) == [(0, 4, "rw-p"), (10, 12, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me ac", "rd wr mr mw me lo ac"]


@pytest.mark.parametrize(("prot", "flags", "want"), [
    (RW, SHANON, ["rd wr sh mr mw me ms"] * 2),
    (RO, NOREPLACE, ["rd mr mw me"] * 2),
])
def test_dontunmap_of_unaccounted_mappings(mm, prot, flags, want):
    mm.mmap(at(0), 4 * P, prot, flags)
    assert mm.mremap(at(0), 4 * P, 4 * P, M | F | D, at(10)) == at(10)
    assert flags_of(mm) == want


def test_dontunmap_takes_a_free_hint(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert mm.mremap(at(0), 4 * P, 4 * P, M | D, at(10)) == at(10)
    assert layout(mm) == [(0, 4, "rw-p"), (10, 14, "rw-p")]


def test_dontunmap_of_a_whole_vma_forgets_its_anon_vma(mm):
    """The old VMA becomes unfaulted: filling the gap to a separately faulted VMA then
    merges all three (with its anon_vma it would merge with the left one only)."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.touch(at(3), write=True)
    mm.mremap(at(0), 2 * P, 2 * P, M | F | D, at(10))
    mm.mmap(at(2), P, RW, NOREPLACE)
    assert layout(mm)[0] == (0, 5, "rw-p")


def test_dontunmap_of_part_of_a_vma_keeps_its_anon_vma(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.touch(at(3), write=True)
    mm.mremap(at(1), P, P, M | F | D, at(10))
    mm.mmap(at(2), P, RW, NOREPLACE)
    assert layout(mm)[:2] == [(0, 3, "rw-p"), (3, 5, "rw-p")]


# -- old_len 0: duplicating shared memory ---------------------------------------------------------


def test_old_len_zero_duplicates_shared_memory(mm):
    mm.mmap(at(0), 4 * P, RW, SHANON)
    assert mm.mremap(at(1), 0, 2 * P, M | F, at(10)) == at(10)
    assert layout(mm) == [(0, 4, "rw-s"), (10, 12, "rw-s")]
    assert offsets(mm) == [0, 1]


def test_old_len_zero_without_maymove_is_enomem(mm):
    mm.mmap(at(0), 4 * P, RW, SHANON)
    assert _refused(mm, at(1), 0, 2 * P, 0, 0) == errno.ENOMEM


def test_old_len_zero_overlap_is_only_a_strict_containment(mm):
    mm.mmap(at(0), 4 * P, RW, SHANON)
    assert _refused(mm, at(1), 0, 2 * P, M | F, at(0)) == errno.EINVAL


def test_old_len_zero_at_the_end_of_a_vma_is_efault(mm):
    mm.mmap(at(0), 4 * P, RW, SHANON)
    assert _refused(mm, at(4), 0, 2 * P, M | F, at(10)) == errno.EFAULT


def test_old_len_zero_with_dontunmap_is_einval(mm):
    mm.mmap(at(0), 4 * P, RW, SHANON)
    assert _refused(mm, at(1), 0, P, M | F | D, at(10)) == errno.EINVAL


# -- max_map_count -----------------------------------------------------------------------------


class MapCount:
    """Sets the number of VMAs to ``max_map_count - headroom``: on the host by mapping or
    unmapping one-page VMAs far up the arena (the child's own mappings count too), on the
    model by lowering its limit. The test's own VMAs live below at(64)."""

    FAR = 1 << 20

    def __init__(self, mm: Any, host: bool) -> None:
        self.mm, self.host = mm, host
        self.limit = host_model_kwargs()["max_map_count"]
        self.fillers = 0

    def count(self) -> int:
        if not self.host:
            return int(self.mm.map_count)
        with open(f"/proc/{self.mm.pid}/maps") as maps:
            return sum(1 for line in maps if "[vsyscall]" not in line)

    def headroom(self, headroom: int) -> None:
        if not self.host:
            self.mm.max_map_count = self.mm.map_count + headroom
            return
        missing = self.limit - headroom - self.count()
        while missing > 0:
            batch = min(missing, 4000)
            self.mm.run_batch(
                [("mmap", at(self.FAR + 2 * (self.fillers + i)), P, RO, NOREPLACE)
                 for i in range(batch)]
            )
            self.fillers += batch
            missing -= batch
        if missing < 0:
            self.fillers += missing
            self.mm.munmap(at(self.FAR + 2 * self.fillers), -2 * missing * P)

    def fresh(self, headroom: int) -> None:
        """An empty test region, then one 4-page VMA at 0 with ``headroom`` left."""
        self.mm.munmap(at(0), 64 * P)
        self.headroom(headroom + 1)
        self.mm.mmap(at(0), 4 * P, RW, NOREPLACE)


@pytest.fixture(scope="module")
def _filled_host() -> Iterator[MapCount]:
    """One host child for every max_map_count test: filling it costs a second."""
    from vmamodel.host import HostAddressSpace

    host = HostAddressSpace()
    try:
        yield MapCount(host, host=True)
    finally:
        host.close()


@pytest.fixture(params=["model", pytest.param("host", marks=pytest.mark.host)])
def map_count(request: pytest.FixtureRequest) -> MapCount:
    if request.param == "host":
        counted: MapCount = request.getfixturevalue("_filled_host")
        return counted
    return MapCount(v.AddressSpace(debug=False, **host_model_kwargs()), host=False)


@pytest.mark.parametrize(("call", "needs"), [
    ((at(1), 2 * P, 2 * P, M | F, at(30)), 6),
    ((at(0), 4 * P, 4 * P, M | F | D, at(30)), 6),
    ((at(0), 4 * P, 4 * P, M | D, at(30)), 6),
    ((at(0), 4 * P, 2 * P, M | F, at(30)), 6),
    ((at(1), 2 * P, P, 0, 0), 1),
    ((at(0), 4 * P, P, 0, 0), 0),
    ((at(0), 4 * P, 8 * P, 0, 0), 0),
    ((at(0), 4 * P, 4 * P, 0, 0), 0),
])
def test_max_map_count_headroom(map_count, call, needs):
    """A new address needs map_count + 2 < max_map_count - 3 (up front); a shrink that
    splits needs one VMA of room (split_vma); growth in place and no-ops need none."""
    mm = map_count.mm
    if needs:
        map_count.fresh(needs - 1)
        assert _errno(mm.mremap, *call) == errno.ENOMEM
    map_count.fresh(needs)
    mm.mremap(*call)


def test_max_map_count_check_comes_after_the_argument_checks(map_count):
    mm = map_count.mm
    map_count.fresh(5)
    assert _errno(mm.mremap, at(0), 4 * P, 4 * P, M | F, at(2)) == errno.EINVAL
    assert _errno(mm.mremap, at(40), 4 * P, 4 * P, M | F, at(50)) == errno.ENOMEM


def test_max_map_count_headroom_of_a_move_the_kernel_places(map_count):
    """prep_move_vma() wants map_count < max_map_count - 3."""
    mm = map_count.mm
    map_count.fresh(3)
    assert _errno(mm.mremap, at(1), 2 * P, 6 * P, M, 0) == errno.ENOMEM
    map_count.fresh(4)
    try:
        new = mm.mremap(at(1), 2 * P, 6 * P, M, 0)
    except ValueError:  # the host child refused a placement outside its arena
        new = None
    assert new != at(1)
    assert layout(mm)[:2] == [(0, 1, "rw-p"), (3, 4, "rw-p")]


# -- model only: what the host cannot show ---------------------------------------------------


@pytest.fixture
def model() -> v.AddressSpace:
    return v.AddressSpace(debug=True, **host_model_kwargs())


class Hooks(v.VmOperations):
    """A driver's vm_ops that records open/close/may_split/mremap and can refuse."""

    def __init__(self, refuse_split: bool = False, refuse_mremap: bool = False) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.refuse_split = refuse_split
        self.refuse_mremap = refuse_mremap

    def _log(self, hook: str, vma: Any) -> None:
        self.calls.append((hook, (vma.vm_start - at(0)) // P, (vma.vm_end - at(0)) // P))

    def open(self, vma: Any) -> None:
        self._log("open", vma)

    def close(self, vma: Any) -> None:
        self._log("close", vma)

    def may_split(self, vma: Any, addr: int) -> None:
        self.calls.append(("may_split", (addr - at(0)) // P, 0))
        if self.refuse_split:
            raise OSError(errno.EPERM, "no split")

    def mremap(self, vma: Any) -> None:
        self._log("mremap", vma)
        if self.refuse_mremap:
            raise OSError(errno.EBUSY, "pinned")


class Driver(v.FileOperations):
    def __init__(self, ops: v.VmOperations, vm_flags: int = 0) -> None:
        self.ops, self.vm_flags = ops, vm_flags

    def mmap_prepare(self, desc: Any) -> None:
        desc.vm_ops = self.ops
        desc.vm_flags |= self.vm_flags


def _device(model: v.AddressSpace, ops: v.VmOperations, pages: int, vm_flags: int = 0) -> None:
    file = v.File("/dev/mremap-test", 64 * P, f_op=Driver(ops, vm_flags), kind="chardev")
    model.mmap(at(0), pages * P, RW, v.MAP_SHARED | v.MAP_FIXED, file)


def test_move_opens_the_copy_closes_the_source_and_tells_the_driver(model):
    ops = Hooks()
    _device(model, ops, 4)
    assert model.mremap(at(1), 2 * P, 2 * P, M | F, at(10)) == at(10)
    assert ops.calls == [
        ("may_split", 1, 0), ("may_split", 3, 0),
        ("open", 10, 12), ("mremap", 10, 12),
        ("may_split", 1, 0), ("open", 0, 1), ("may_split", 3, 0), ("open", 3, 4),
        ("close", 1, 3),
    ]
    assert layout(model) == [(0, 1, "rw-s"), (3, 4, "rw-s"), (10, 12, "rw-s")]


def test_may_split_refusal_stops_a_partial_move_before_any_change(model):
    _device(model, Hooks(refuse_split=True), 4)
    assert _refused(model, at(1), 2 * P, 2 * P, M | F, at(10)) == errno.EPERM


def test_may_split_is_not_asked_when_the_whole_vma_moves(model):
    ops = Hooks(refuse_split=True)
    _device(model, ops, 4)
    assert model.mremap(at(0), 4 * P, 4 * P, M | F, at(10)) == at(10)
    assert [call[0] for call in ops.calls] == ["open", "mremap", "close"]


def test_mremap_hook_refusal_unmaps_the_copy_and_keeps_the_source(model):
    """Partial effect: the pages go back, the new range is unmapped instead, and a
    MREMAP_FIXED target that was unmapped first stays unmapped."""
    ops = Hooks(refuse_mremap=True)
    _device(model, ops, 4)
    model.mmap(at(10), 2 * P, RO, NOREPLACE)
    model.touch(at(0), write=True)
    assert _errno(model.mremap, at(0), 4 * P, 4 * P, M | F, at(10)) == errno.EBUSY
    assert layout(model) == [(0, 4, "rw-s")]
    assert at(0) in model.pages.present
    assert ops.calls[-1] == ("close", 10, 14)


@pytest.mark.parametrize("flag", [v.VM.DONTEXPAND, v.VM.PFNMAP])
def test_dontexpand_and_pfnmap_refuse_growth_and_dontunmap(model, flag):
    _device(model, Hooks(), 2, flag)
    assert _refused(model, at(0), 2 * P, 3 * P, M, 0) == errno.EFAULT
    assert _refused(model, at(0), 2 * P, 2 * P, M | F | D, at(10)) == errno.EINVAL
    assert model.mremap(at(0), 2 * P, 2 * P, M | F, at(10)) == at(10)


def test_special_mapping_that_may_grow_cannot_merge_so_growth_is_enomem(model):
    """VM_IO passes the checks but vma_merge_extend() never merges VM_SPECIAL."""
    _device(model, Hooks(), 2, v.VM.IO)
    assert _refused(model, at(0), 2 * P, 3 * P, 0, 0) == errno.ENOMEM


def test_growth_of_a_locked_mapping_past_rlimit_memlock_is_eagain(model):
    model.cap_ipc_lock = False
    model.rlimit_memlock = 4 * P
    model.mmap(at(0), 2 * P, RW, LOCKED)
    assert _refused(model, at(0), 2 * P, 5 * P, 0, 0) == errno.EAGAIN
    assert model.mremap(at(0), 2 * P, 4 * P, 0, 0) == at(0)
    assert model.locked_vm == 4


def test_growth_of_a_locked_mapping_populates_the_new_pages(model):
    model.mmap(at(0), 2 * P, RW, LOCKED)
    model.mremap(at(0), 2 * P, 4 * P, 0, 0)
    assert model.find_vma(at(0)).anon_vma is not None
    assert at(2) in model.pages.present


def test_pages_and_guard_markers_move_with_the_mapping(model):
    model.mmap(at(0), 4 * P, RW, NOREPLACE)
    model.touch(at(1), write=True)
    model.pages.guards.add(at(2))
    model.mremap(at(0), 4 * P, 4 * P, M | F, at(10))
    assert model.pages.present == {at(11)}
    assert model.pages.guards == {at(12)}


def test_dontunmap_leaves_no_pages_behind(model):
    model.mmap(at(0), 2 * P, RW, NOREPLACE)
    model.touch(at(0), write=True)
    model.mremap(at(0), 2 * P, 2 * P, M | F | D, at(10))
    assert model.pages.present == {at(10)}
    assert model.find_vma(at(0)).anon_vma is None


def test_commit_charge_follows_the_mapping(model):
    model.mmap(at(0), 4 * P, RW, NOREPLACE)
    assert model.committed_pages == 4
    model.mremap(at(0), 4 * P, 6 * P, 0, 0)
    assert model.committed_pages == 6
    model.mremap(at(0), 6 * P, 6 * P, M | F, at(20))
    assert model.committed_pages == 6
    model.mremap(at(20), 6 * P, 6 * P, M | F | D, at(40))
    assert model.committed_pages == 12
    model.mremap(at(40), 6 * P, 2 * P, 0, 0)
    assert model.committed_pages == 8
    assert model.total_vm == 8


def test_events_of_a_partial_move(model):
    model.mmap(at(0), 4 * P, RW, NOREPLACE)
    model.mmap(at(10), 2 * P, RW, NOREPLACE)
    with model.tracer.collect() as events:
        model.mremap(at(0), 2 * P, 2 * P, M | F, at(12))
    kinds = [event.kind for event in events]
    assert kinds[0] == "Syscall" and kinds[-1] == "SyscallReturn"
    merge = next(e for e in events if e.kind == "MergeAttempt")
    assert (merge.op, merge.merged) == ("new_range", True)
    assert "Split" in kinds and "VmaRemoved" in kinds


def test_private_duplicate_attempt_warns(model):
    model.mmap(at(0), 2 * P, RW, NOREPLACE)
    with model.tracer.collect() as events, pytest.raises(OSError):
        model.mremap(at(0), 0, P, M | F, at(10))
    assert any(e.kind == "WarnOn" for e in events)


# -- model only: failure points -----------------------------------------------------------------


@pytest.mark.parametrize("point", ["copy_vma", "vm_enough_memory", "max_map_count"])
def test_failures_before_the_copy_change_nothing_but_the_target(model, point):
    model.mmap(at(0), 4 * P, RW, NOREPLACE)
    model.mmap(at(10), 2 * P, RO, NOREPLACE)
    committed = model.committed_pages
    nth = 2 if point == "max_map_count" else 1
    with model.inject(point, nth=nth):
        assert _errno(model.mremap, at(0), 4 * P, 6 * P, M | F, at(10)) == errno.ENOMEM
    assert layout(model) == [(0, 4, "rw-p")]
    assert model.committed_pages == committed


def test_failure_to_link_the_copy_closes_it_again(model):
    ops = Hooks()
    _device(model, ops, 2)
    with model.inject("vma_prealloc"):
        assert _errno(model.mremap, at(0), 2 * P, 2 * P, M | F, at(10)) == errno.ENOMEM
    assert ops.calls == [("open", 10, 12), ("close", 10, 12)]
    assert layout(model) == [(0, 2, "rw-s")]


def test_failed_page_table_move_unmaps_the_copy(model):
    model.mmap(at(0), 2 * P, RW, NOREPLACE)
    model.touch(at(0), write=True)
    with model.inject("move_page_tables"):
        assert _errno(model.mremap, at(0), 2 * P, 2 * P, M | F, at(10)) == errno.ENOMEM
    assert layout(model) == [(0, 2, "rw-p")]
    assert model.pages.present == {at(0)}


def test_failed_source_unmap_leaves_both_copies(model):
    """unmap_source_vma() cannot split the source: the charge is taken again and the source
    keeps VM_ACCOUNT cleared."""
    model.mmap(at(0), 4 * P, RW, NOREPLACE)
    model.touch(at(0), write=True)
    with model.inject("split_alloc"):
        assert model.mremap(at(1), 2 * P, 2 * P, M | F, at(10)) == at(10)
    assert layout(model) == [(0, 4, "rw-p"), (10, 12, "rw-p")]
    assert flags_of(model) == ["rd wr mr mw me", "rd wr mr mw me ac"]
    assert model.committed_pages == 6


def test_failed_merge_extend_is_enomem(model):
    model.mmap(at(0), 2 * P, RW, NOREPLACE)
    with model.inject("merge_alloc"):
        assert _refused(model, at(0), 2 * P, 3 * P, 0, 0) == errno.ENOMEM
    assert model.committed_pages == 2


def test_move_into_fixed_range_over_a_fresh_map(mm):
    """MAP_FIXED-replaced and then moved-over ranges behave like any other."""
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.mmap(at(1), 2 * P, RO, FIXED)
    assert mm.mremap(at(1), 2 * P, 2 * P, M | F, at(10)) == at(10)
    assert layout(mm) == [(0, 1, "rw-p"), (3, 4, "rw-p"), (10, 12, "r--p")]


# -- sealing and fork children -------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "flags"), [(2, 2, 0), (2, 1, 0), (2, 3, 0), (2, 2, M | F)])
def test_sealed_vma_refuses_mremap(mm, old, new, flags):
    """check_prep_vma(): even a call that would change nothing is refused."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mseal(at(0), 2 * P)
    assert _refused(mm, at(0), old * P, new * P, flags, at(10)) == errno.EPERM


def test_sealed_target_of_a_fixed_move_is_eperm(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(10), 2 * P, RO, NOREPLACE)
    mm.mseal(at(10), 2 * P)
    assert _refused(mm, at(0), 2 * P, 2 * P, M | F, at(10)) == errno.EPERM


def test_move_of_several_vmas_stops_at_a_sealed_one(mm):
    """Partial effect: the VMAs before the sealed one stay moved."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 4 * P, RO, NOREPLACE)
    mm.mseal(at(3), 4 * P)
    assert _errno(mm.mremap, at(0), 5 * P, 5 * P, M | F, at(21)) == errno.EPERM
    assert layout(mm) == [(3, 7, "r--p"), (21, 23, "rw-p")]


@pytest.mark.parametrize(("in_child", "want"), [
    (False, [(0, 4, "rw-p")]),
    (True, [(0, 2, "rw-p"), (2, 4, "rw-p")]),
])
def test_faulted_fork_child_moved_next_to_an_unfaulted_vma_does_not_merge(mm, in_child, want):
    """is_mergeable_anon_vma(): the unfaulted neighbour would adopt the anon_vma of a VMA
    copied by fork (copied_from is a fork child), which is refused; the parent merges."""
    mm.mmap(at(2), 2 * P, RW, NOREPLACE)
    mm.touch(at(2), write=True)
    child = mm.fork()
    space = child if in_child else mm
    space.mremap(at(2), 2 * P, 2 * P, M | F, at(10))
    space.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert space.mremap(at(10), 2 * P, 2 * P, M | F, at(2)) == at(2)
    assert layout(space) == want


# -- model only: more driver rules and failure points ---------------------------------------


class PlacingDriver(Driver):
    """A driver with its own get_unmapped_area, which might not obey MAP_FIXED."""

    def get_unmapped_area(self, mm: Any, file: Any, addr: int, length: int, pgoff: int,
                          flags: int) -> int:
        return addr


def test_vma_with_its_own_placement_only_moves_alone(model):
    file = v.File("/dev/placing", 64 * P, f_op=PlacingDriver(Hooks()), kind="chardev")
    model.mmap(at(0), 2 * P, RW, v.MAP_SHARED | v.MAP_FIXED, file)
    model.mmap(at(3), 2 * P, RO, NOREPLACE)
    assert _refused(model, at(0), 5 * P, 5 * P, M | F, at(20)) == errno.EFAULT
    assert model.mremap(at(0), 2 * P, 2 * P, M | F, at(20)) == at(20)
    # Partial effect: a VMA before it in the range has already moved.
    assert _errno(model.mremap, at(3), 20 * P, 20 * P, M | F, at(30)) == errno.EFAULT
    assert layout(model) == [(20, 22, "rw-s"), (30, 32, "r--p")]


def test_injected_mremap_hook_failure_undoes_the_move(model):
    ops = Hooks()
    _device(model, ops, 2)
    with model.inject("vm_mremap"):
        assert _errno(model.mremap, at(0), 2 * P, 2 * P, M | F, at(10)) == errno.EINVAL
    assert layout(model) == [(0, 2, "rw-s")]
    assert [call[0] for call in ops.calls] == ["open", "close"]


def test_failure_after_a_shrink_keeps_the_tail_unmapped(model):
    """Partial effect: a shrink with MREMAP_FIXED unmaps the target, then the tail; a move
    that then fails leaves both unmapped."""
    model.mmap(at(0), 4 * P, RW, NOREPLACE)
    model.mmap(at(10), 2 * P, RO, NOREPLACE)
    with model.inject("copy_vma"):
        assert _errno(model.mremap, at(0), 4 * P, 2 * P, M | F, at(10)) == errno.ENOMEM
    assert layout(model) == [(0, 2, "rw-p")]
