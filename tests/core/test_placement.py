"""Where the kernel puts a mapping it may place itself (mmap without MAP_FIXED): top-down
below mmap_base, THP alignment, hints, the stack guard gap, MAP_32BIT, the legacy layout.

Both backends run in whole-process mode, without address randomisation: the host is the
placement runner (vmamodel.host.placement), the model is seeded from that runner's maps and
smaps before the first call. Each test states a rule relative to the layout it finds, and the
rule must hold on both.
"""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import vmamodel as v
from vmamodel.host.placement import PlacementChild
from vmamodel.host.traits import host_kernel_kwargs
from vmamodel.mm import RLIM_INFINITY, AddressSpace, mmap_base
from vmamodel.parse import parse_maps
from vmamodel.unmapped_area import MAP_32BIT_HIGH, MAP_32BIT_LOW, ShmemHuge, ThpFileOperations

P = 4096
MIB = 1 << 20
PMD = 2 * MIB
RW = v.PROT_READ | v.PROT_WRITE
ANON = v.MAP_PRIVATE | v.MAP_ANONYMOUS
SHARED_ANON = v.MAP_SHARED | v.MAP_ANONYMOUS
GUARD = 256 * P  # stack_guard_gap

Space = Any
Factory = Callable[..., Space]


@pytest.fixture(params=["model", pytest.param("host", marks=pytest.mark.host)])
def placed(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """``placed(legacy_layout=..., rlimit_stack=...)``: a fresh runner, or a model seeded
    from one."""
    children: list[PlacementChild] = []

    def make(*, legacy_layout: bool = False, rlimit_stack: int | None = None) -> Space:
        child = PlacementChild(legacy_layout=legacy_layout, rlimit_stack=rlimit_stack)
        children.append(child)
        if request.param == "host":
            return child
        kwargs = dict(host_kernel_kwargs(), legacy_layout=legacy_layout)
        if rlimit_stack is not None:
            kwargs["rlimit_stack"] = rlimit_stack
        return AddressSpace.from_maps(child.maps(), smaps=child.smaps(), **kwargs)

    try:
        yield make
    finally:
        for child in children:
            child.close()


@pytest.fixture
def space(placed: Factory) -> Space:
    return placed()


def spans(space: Space) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in parse_maps(space.maps())]


def top_down_base(space: Space) -> int:
    """mmap_base as the runner's layout shows it: the end of the loader, the first mapping
    the kernel placed top-down."""
    return max(e.end for e in parse_maps(space.maps()) if "ld-linux" in e.name)


def fill_top(space: Space) -> int:
    """Map PROT_NONE into every hole among the runner's mappings just below mmap_base, so that
    the top-down search starts right under them; returns the start of that block."""
    base = top_down_base(space)
    cluster = sorted(s for s in spans(space) if base - (256 << 20) <= s[0] and s[1] <= base)
    bounds = [*cluster, (base, base)]
    for (_, end), (start, _) in itertools.pairwise(bounds):
        if start > end:
            space.mmap(end, start - end, v.PROT_NONE, ANON | v.MAP_FIXED_NOREPLACE)
    return cluster[0][0]


def thp_top_down(top: int, length: int) -> int:
    """__thp_get_unmapped_area() under a free stretch ending at ``top``: the padded area's
    start, moved up to a PMD boundary, or by a whole PMD when it is one already."""
    ret = top - length - PMD
    return ret + ((-ret) % PMD or PMD)


def lowest_free(space: Space, low: int, length: int) -> int:
    """The bottom-up answer from the maps text: the lowest start >= low of a free stretch."""
    cursor = low
    for start, end in sorted(spans(space)):
        if end <= cursor:
            continue
        if start - cursor >= length:
            return cursor
        cursor = max(cursor, end)
    return cursor


def ext4_file(tmp_path: Path, size: int) -> v.File:
    """A regular file of an ext4/xfs-like filesystem (its mappings get THP alignment)."""
    path = tmp_path / "data"
    path.write_bytes(b"\0" * size)
    st = os.stat(path)
    return v.open_file(
        str(path), v.O_RDWR, size, dev=(os.major(st.st_dev), os.minor(st.st_dev)),
        ino=st.st_ino, f_op=ThpFileOperations(),
    )


# ---- top-down -----------------------------------------------------------------------------


@pytest.mark.host
def test_first_mapping_takes_the_highest_hole_below_mmap_base(space: Space) -> None:
    base = top_down_base(space)
    tops = [
        min(next_start, base)
        for (_, prev_end), (next_start, _) in itertools.pairwise(sorted(spans(space)))
        if prev_end < base and min(next_start, base) - prev_end >= P
    ]
    assert space.mmap(0, P, RW, ANON) == max(tops) - P


@pytest.mark.host
def test_mappings_stack_downwards_from_the_top(space: Space) -> None:
    top = fill_top(space)
    assert space.mmap(0, 64 * P, RW, ANON) == top - 64 * P
    assert space.mmap(0, 3 * P, v.PROT_READ, ANON) == top - 67 * P


@pytest.mark.host
def test_a_hole_is_reused_when_it_fits(space: Space) -> None:
    top = fill_top(space)
    base = space.mmap(0, 3 * P, RW, ANON)
    space.munmap(base + P, P)
    assert space.mmap(0, P, v.PROT_READ, ANON) == base + P
    assert base == top - 3 * P


@pytest.mark.host
def test_a_hole_too_small_is_skipped(space: Space) -> None:
    fill_top(space)
    base = space.mmap(0, 3 * P, RW, ANON)
    space.munmap(base + P, P)
    assert space.mmap(0, 2 * P, v.PROT_READ, ANON) == base - 2 * P


# ---- THP alignment ------------------------------------------------------------------------


@pytest.mark.host
@pytest.mark.parametrize("pmds", [1, 2, 5])
def test_anonymous_pmd_multiple_is_aligned(space: Space, pmds: int) -> None:
    top = fill_top(space)
    low = space.mmap(0, 3 * P, RW, ANON)
    assert low == top - 3 * P
    got = space.mmap(0, pmds * PMD, RW, ANON)
    assert got == thp_top_down(low, pmds * PMD)
    assert got % PMD == 0


@pytest.mark.host
def test_anonymous_length_not_a_pmd_multiple_is_not_aligned(space: Space) -> None:
    fill_top(space)
    low = space.mmap(0, 3 * P, RW, ANON)
    assert space.mmap(0, PMD + P, v.PROT_READ, ANON) == low - PMD - P


@pytest.mark.host
def test_aligned_padded_area_puts_the_mapping_at_its_top(space: Space) -> None:
    """__thp_get_unmapped_area(): when the padded search lands aligned, the result is moved
    up by a whole PMD, so the mapping touches the one above instead of leaving a PMD free
    above itself."""
    fill_top(space)
    top = space.mmap(0, 4 * PMD, RW, ANON)
    assert top % PMD == 0
    assert space.mmap(0, PMD, v.PROT_READ, ANON) == top - PMD


@pytest.mark.host
def test_shared_anonymous_is_not_pmd_aligned_when_shmem_thp_is_off(space: Space) -> None:
    fill_top(space)
    low = space.mmap(0, 3 * P, RW, ANON)
    assert space.mmap(0, PMD, RW, SHARED_ANON) == low - PMD


@pytest.mark.host
def test_memfd_is_not_pmd_aligned_when_shmem_thp_is_off(space: Space) -> None:
    fill_top(space)
    low = space.mmap(0, 3 * P, RW, ANON)
    fd = v.memfd_create("placement", 4 * PMD)
    assert space.mmap(0, 2 * PMD, RW, v.MAP_SHARED, fd, 0) == low - 2 * PMD


@pytest.mark.host
@pytest.mark.parametrize("offset", [0, P, PMD + 3 * P])
def test_thp_file_mapping_matches_offset_modulo_pmd(
    space: Space, tmp_path: Path, offset: int
) -> None:
    fill_top(space)
    low = space.mmap(0, 3 * P, RW, ANON)
    file = ext4_file(tmp_path, 8 * PMD)
    got = space.mmap(0, 4 * PMD, v.PROT_READ, v.MAP_PRIVATE, file, offset)
    assert (got - offset) % PMD == 0
    assert low - 4 * PMD - PMD < got <= low - 4 * PMD


@pytest.mark.host
def test_thp_file_mapping_without_a_whole_pmd_is_not_aligned(
    space: Space, tmp_path: Path
) -> None:
    fill_top(space)
    low = space.mmap(0, 3 * P, RW, ANON)
    file = ext4_file(tmp_path, 8 * PMD)
    assert space.mmap(0, PMD, v.PROT_READ, v.MAP_PRIVATE, file, P) == low - PMD


# ---- hints --------------------------------------------------------------------------------

HIGH_HINT = 0x300000000000


@pytest.mark.host
def test_free_hint_is_honoured(space: Space) -> None:
    assert space.mmap(HIGH_HINT, 5 * P, RW, ANON) == HIGH_HINT


@pytest.mark.host
def test_unaligned_hint_is_rounded_down(space: Space) -> None:
    assert space.mmap(HIGH_HINT + 0x123, P, RW, ANON) == HIGH_HINT


@pytest.mark.host
def test_hint_wins_over_thp_alignment(space: Space) -> None:
    assert space.mmap(HIGH_HINT + P, PMD, RW, ANON) == HIGH_HINT + P


@pytest.mark.host
def test_occupied_hint_falls_back_to_top_down(space: Space) -> None:
    top = fill_top(space)
    taken = space.mmap(HIGH_HINT, 4 * P, RW, ANON)
    assert space.mmap(taken + P, 2 * P, RW, ANON) == top - 2 * P


@pytest.mark.host
def test_hint_below_one_page_is_no_hint(space: Space) -> None:
    """round_hint_to_min() rounds the hint down to a page first: 16 becomes 0."""
    top = fill_top(space)
    assert space.mmap(16, P, RW, ANON) == top - P


@pytest.mark.host
def test_hint_at_mmap_min_addr_is_honoured(space: Space) -> None:
    lowest = host_kernel_kwargs()["mmap_min_addr"]
    assert space.mmap(lowest, P, RW, ANON) == lowest


@pytest.mark.host
def test_hint_past_task_size_falls_back(space: Space) -> None:
    top = fill_top(space)
    assert space.mmap(v.TASK_SIZE - P, 2 * P, RW, ANON) == top - 2 * P


@pytest.mark.host
def test_thp_file_hint_needs_room_for_the_padding(space: Space, tmp_path: Path) -> None:
    """thp_get_unmapped_area() tries the padded length at the hint: a hint with room for the
    mapping but not for the extra PMD is dropped, and the aligned top-down place is used."""
    top = fill_top(space)
    file = ext4_file(tmp_path, 8 * PMD)
    wall = space.mmap(HIGH_HINT + 2 * PMD, P, RW, ANON)
    got = space.mmap(HIGH_HINT, 2 * PMD, v.PROT_READ, v.MAP_PRIVATE, file, 0)
    assert wall == HIGH_HINT + 2 * PMD
    assert got == thp_top_down(top, 2 * PMD)


@pytest.mark.host
def test_thp_file_hint_with_room_for_the_padding_is_honoured(
    space: Space, tmp_path: Path
) -> None:
    file = ext4_file(tmp_path, 8 * PMD)
    assert space.mmap(HIGH_HINT + P, 2 * PMD, v.PROT_READ, v.MAP_PRIVATE, file, 0) == (
        HIGH_HINT + P
    )


# ---- the stack guard gap ------------------------------------------------------------------


@pytest.mark.host
def test_hint_inside_the_guard_gap_is_refused(space: Space) -> None:
    top = fill_top(space)
    stack = space.mmap(HIGH_HINT, 4 * P, RW, ANON | v.MAP_GROWSDOWN)
    assert space.mmap(stack - GUARD, P, RW, ANON) == top - P


@pytest.mark.host
def test_hint_just_below_the_guard_gap_is_honoured(space: Space) -> None:
    stack = space.mmap(HIGH_HINT, 4 * P, RW, ANON | v.MAP_GROWSDOWN)
    assert space.mmap(stack - GUARD - P, P, RW, ANON) == stack - GUARD - P


@pytest.mark.host
def test_top_down_search_keeps_the_guard_gap_free(space: Space) -> None:
    top = fill_top(space)
    stack = space.mmap(0, 4 * P, RW, ANON | v.MAP_GROWSDOWN)
    assert stack == top - 4 * P
    assert space.mmap(0, P, RW, ANON) == stack - GUARD - P


@pytest.mark.host
def test_guard_gap_lowers_the_limit_of_the_whole_search(space: Space) -> None:
    """unmapped_area_topdown(): a range under a VM_GROWSDOWN VMA is refused and the search
    restarts with the high limit at the guard gap's bottom, so the hole between the stack and
    a small VMA inside its guard gap is never looked at again."""
    fill_top(space)
    stack = space.mmap(0, 8 * P, RW, ANON | v.MAP_GROWSDOWN)
    inside = stack - GUARD // 2
    assert space.mmap(inside, P, v.PROT_READ, ANON | v.MAP_FIXED_NOREPLACE) == inside
    assert space.mmap(0, P, RW, ANON) == stack - GUARD - P


@pytest.mark.host
def test_bottom_up_skips_a_gap_ending_in_a_guard_gap(placed: Factory) -> None:
    space = placed(legacy_layout=True)
    start = lowest_free(space, 0x300000000000, 512 * P)
    stack = space.mmap(start + 16 * P, 4 * P, RW, ANON | v.MAP_GROWSDOWN)
    got = space.mmap(0, P, RW, ANON)
    assert stack == start + 16 * P
    assert got >= stack + 4 * P or got < start


@pytest.mark.host
def test_hint_touching_the_process_stack_is_refused(space: Space) -> None:
    top = fill_top(space)
    stack = next(e for e in parse_maps(space.maps()) if e.name == "[stack]")
    assert space.mmap(stack.start - P, P, RW, ANON) == top - P
    assert space.mmap(stack.start - GUARD - P, P, RW, ANON) == stack.start - GUARD - P


# ---- MAP_32BIT, MAP_ABOVE4G ---------------------------------------------------------------


@pytest.mark.host
def test_map_32bit_goes_bottom_up_in_the_second_gib(space: Space) -> None:
    assert space.mmap(0, 3 * P, RW, ANON | v.MAP_32BIT) == MAP_32BIT_LOW
    assert space.mmap(0, P, RW, ANON | v.MAP_32BIT) == MAP_32BIT_LOW + 3 * P


@pytest.mark.host
def test_map_32bit_pmd_multiple_is_aligned_one_pmd_up(space: Space) -> None:
    """THP alignment of the bottom-up result still follows the top-down rule of the layout:
    an aligned start is moved up by a PMD."""
    assert space.mmap(0, PMD, RW, ANON | v.MAP_32BIT) == MAP_32BIT_LOW + PMD


@pytest.mark.host
def test_map_32bit_ignores_a_hint_above_its_window(space: Space) -> None:
    assert space.mmap(HIGH_HINT, P, RW, ANON | v.MAP_32BIT) == MAP_32BIT_LOW


@pytest.mark.host
def test_map_32bit_honours_a_hint_inside_its_window(space: Space) -> None:
    assert space.mmap(0x50000000, P, RW, ANON | v.MAP_32BIT) == 0x50000000


@pytest.mark.host
def test_map_32bit_window_exhausted_is_enomem(space: Space) -> None:
    window = MAP_32BIT_HIGH - MAP_32BIT_LOW
    space.mmap(MAP_32BIT_LOW, window, v.PROT_NONE, ANON | v.MAP_FIXED_NOREPLACE)
    with pytest.raises(OSError) as info:
        space.mmap(0, P, RW, ANON | v.MAP_32BIT)
    assert info.value.errno == errno.ENOMEM


@pytest.mark.host
def test_map_32bit_with_above4g_stays_in_the_32bit_window(space: Space) -> None:
    assert space.mmap(0, P, RW, ANON | v.MAP_32BIT | v.MAP_ABOVE4G) == MAP_32BIT_LOW


@pytest.mark.host
def test_above4g_is_ordinary_top_down_when_there_is_room_high(space: Space) -> None:
    top = fill_top(space)
    assert space.mmap(0, P, RW, ANON | v.MAP_ABOVE4G) == top - P


# ---- layouts ------------------------------------------------------------------------------


@pytest.mark.host
def test_unlimited_stack_moves_mmap_base_down(placed: Factory) -> None:
    space = placed(rlimit_stack=RLIM_INFINITY)
    assert top_down_base(space) == mmap_base(v.TASK_SIZE, RLIM_INFINITY, GUARD)
    top = fill_top(space)
    assert space.mmap(0, P, RW, ANON) == top - P


@pytest.mark.host
def test_large_stack_limit_sets_mmap_base(placed: Factory) -> None:
    limit = 1 << 30
    space = placed(rlimit_stack=limit)
    assert top_down_base(space) == v.TASK_SIZE - limit - GUARD
    top = fill_top(space)
    assert space.mmap(0, 5 * P, RW, ANON) == top - 5 * P


@pytest.mark.host
def test_legacy_layout_goes_bottom_up_from_a_third_of_task_size(placed: Factory) -> None:
    space = placed(legacy_layout=True)
    legacy_base = (v.TASK_SIZE // 3 + P - 1) & ~(P - 1)
    first = lowest_free(space, legacy_base, 3 * P)
    assert space.mmap(0, 3 * P, RW, ANON) == first
    second = lowest_free(space, legacy_base, P)
    assert space.mmap(0, P, RW, ANON) == second


@pytest.mark.host
def test_legacy_layout_reuses_the_lowest_hole(placed: Factory) -> None:
    space = placed(legacy_layout=True)
    base = space.mmap(0, 3 * P, RW, ANON)
    space.munmap(base + P, P)
    assert space.mmap(0, P, v.PROT_READ, ANON) == base + P


@pytest.mark.host
def test_legacy_layout_aligns_a_pmd_multiple_up_to_the_next_boundary(placed: Factory) -> None:
    space = placed(legacy_layout=True)
    legacy_base = (v.TASK_SIZE // 3 + P - 1) & ~(P - 1)
    padded = lowest_free(space, legacy_base, 2 * PMD)
    assert space.mmap(0, PMD, RW, ANON) == (padded + PMD - 1) & ~(PMD - 1)


@pytest.mark.host
def test_legacy_layout_honours_a_free_hint(placed: Factory) -> None:
    space = placed(legacy_layout=True)
    assert space.mmap(HIGH_HINT, P, RW, ANON) == HIGH_HINT


# ---- shmem with huge pages (model only: the host's shmem_enabled is a machine-wide setting) --


@pytest.mark.parametrize("enabled", ["always", "advise", "within_size", "force"])
def test_shmem_huge_aligns_memfd_and_shared_anonymous(enabled: str) -> None:
    """shmem_get_unmapped_area(): with huge shmem pages allowed, a mapping of at least a PMD
    moves to the PMD boundary that matches its file offset (plain top-down place otherwise).
    The host runs shmem_enabled=never, so this rule is checked on the model alone."""
    with PlacementChild() as child:
        kwargs = dict(host_kernel_kwargs(), shmem_huge=ShmemHuge(enabled=enabled))
        space = AddressSpace.from_maps(child.maps(), smaps=child.smaps(), **kwargs)
    fill_top(space)
    low = space.mmap(0, 3 * P, RW, ANON)
    memfd = v.memfd_create("huge", 8 * PMD)
    at_offset = space.mmap(0, 2 * PMD, RW, v.MAP_SHARED, memfd, 3 * P)
    shared = space.mmap(0, PMD, RW, SHARED_ANON)
    small = space.mmap(0, PMD - P, RW, SHARED_ANON)
    assert (at_offset - 3 * P) % PMD == 0
    assert at_offset + 2 * PMD <= low
    assert shared % PMD == 0
    assert small + PMD - P == shared


def test_shmem_huge_never_with_a_per_size_order_aligns_shared_anonymous_only() -> None:
    """Anonymous shmem uses the highest per-size order that is on, even with shmem_enabled
    never; memfds follow the mount's huge= setting alone."""
    with PlacementChild() as child:
        config = ShmemHuge(enabled="never", orders=1 << 4)  # 64 KiB pages
        kwargs = dict(host_kernel_kwargs(), shmem_huge=config)
        space = AddressSpace.from_maps(child.maps(), smaps=child.smaps(), **kwargs)
    fill_top(space)
    low = space.mmap(0, 3 * P, RW, ANON)
    shared = space.mmap(0, 32 * P, RW, SHARED_ANON)
    memfd = v.memfd_create("plain", 8 * PMD)
    plain = space.mmap(0, 32 * P, RW, v.MAP_SHARED, memfd, 0)
    assert shared % (16 * P) == 0
    assert shared + 32 * P <= low
    assert plain + 32 * P == shared
