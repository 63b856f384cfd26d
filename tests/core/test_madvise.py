"""madvise(2): argument checks, flag advices (splits, merges, refusals), page advices,
guard markers and MADV_POPULATE_*, each on the model and on the host."""

from __future__ import annotations

import errno

import pytest

import vmamodel as v

from .util import NOREPLACE, RO, RW, SHANON, P, at, flags_of, layout

ULONG_MAX = (1 << 64) - 1
DROPPABLE = v.MAP_DROPPABLE | v.MAP_ANONYMOUS | v.MAP_FIXED_NOREPLACE


def errno_of(fn: object, *args: object) -> int:
    with pytest.raises(OSError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.errno or 0


def _has(mm: object, mnemonic: str) -> list[bool]:
    return [mnemonic in line.split() for line in flags_of(mm)]


def _memfd_map(mm, page: int, npages: int, prot: int, flags: int, size_pages: int = 16) -> None:
    file = v.memfd_create("madv", size_pages * P)
    mm.mmap(at(page), npages * P, prot, flags | v.MAP_FIXED, file, 0)


def _separately_written(mm, advice: int, file: v.File | None = None) -> list[tuple[int, int, str]]:
    """Two RW private VMAs [0,2) and [3,5) (anonymous, or of ``file`` at offsets equal to
    their page numbers); [0,2) gets ``advice``, [3,5) a write fault; then the gap is
    filled. The new page merges with both sides only if [0,2) has no anon_vma of its own
    (is_mergeable_anon_vma() in mm/vma.c)."""

    def place(page: int, npages: int) -> None:
        if file is None:
            mm.mmap(at(page), npages * P, RW, NOREPLACE)
        else:
            mm.mmap(at(page), npages * P, RW, v.MAP_PRIVATE | v.MAP_FIXED, file, page * P)

    place(0, 2)
    place(3, 2)
    mm.madvise(at(0), 2 * P, advice)
    mm.touch(at(3), True)
    place(2, 1)
    return layout(mm)


# -- arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize("advice", [999, -1, 26, v.MADV_HWPOISON, v.MADV_SOFT_OFFLINE])
def test_unknown_advice_is_einval_even_with_length_zero(mm, advice):
    assert errno_of(mm.madvise, at(0), 0, advice) == errno.EINVAL


def test_unaligned_start_is_einval(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.madvise, at(0) + 1, P, v.MADV_NORMAL) == errno.EINVAL


def test_length_rounding_to_zero_is_einval(mm):
    assert errno_of(mm.madvise, at(0), ULONG_MAX, v.MADV_NORMAL) == errno.EINVAL


def test_wrapping_range_is_einval(mm):
    assert errno_of(mm.madvise, at(0), (1 << 64) - at(0) + P, v.MADV_NORMAL) == errno.EINVAL


def test_length_zero_succeeds_over_a_hole(mm):
    mm.madvise(at(5), 0, v.MADV_DONTFORK)
    assert layout(mm) == []


def test_unaligned_length_rounds_up(mm):
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.madvise(at(0), P + 1, v.MADV_DONTFORK)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 3, "rw-p")]
    assert _has(mm, "dc") == [True, False]


# -- holes --------------------------------------------------------------------------------


def test_range_in_a_hole_is_enomem(mm):
    assert errno_of(mm.madvise, at(0), 2 * P, v.MADV_NORMAL) == errno.ENOMEM


def test_holes_are_enomem_after_advising_every_mapped_part(mm):
    """Partial effect: the advice reaches every VMA of the range, then ENOMEM."""
    mm.mmap(at(2), 2 * P, RW, NOREPLACE)
    mm.mmap(at(6), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.madvise, at(0), 10 * P, v.MADV_DONTFORK) == errno.ENOMEM
    assert _has(mm, "dc") == [True, True]


def test_range_past_the_last_vma_is_enomem_after_advising(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.madvise, at(1), 4 * P, v.MADV_DONTDUMP) == errno.ENOMEM
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "rw-p")]
    assert _has(mm, "dd") == [False, True]


def test_a_vma_error_stops_the_walk_and_beats_a_hole(mm):
    """WIPEONFORK: the private VMA is changed, the shared one refuses (EINVAL), the VMA
    after it is never reached, and the earlier hole's ENOMEM is not reported."""
    mm.mmap(at(1), P, RW, NOREPLACE)
    mm.mmap(at(2), P, RW, SHANON)
    mm.mmap(at(4), P, RW, NOREPLACE)
    assert errno_of(mm.madvise, at(0), 5 * P, v.MADV_WIPEONFORK) == errno.EINVAL
    assert _has(mm, "wf") == [True, False, False]


# -- flag advices -------------------------------------------------------------------------

FLAG_ADVICES = [
    (v.MADV_RANDOM, v.MADV_NORMAL, "rr"),
    (v.MADV_SEQUENTIAL, v.MADV_NORMAL, "sr"),
    (v.MADV_DONTFORK, v.MADV_DOFORK, "dc"),
    (v.MADV_WIPEONFORK, v.MADV_KEEPONFORK, "wf"),
    (v.MADV_DONTDUMP, v.MADV_DODUMP, "dd"),
    (v.MADV_HUGEPAGE, v.MADV_NORMAL, "hg"),
    (v.MADV_NOHUGEPAGE, v.MADV_NORMAL, "nh"),
    (v.MADV_MERGEABLE, v.MADV_UNMERGEABLE, "mg"),
]


@pytest.mark.parametrize(("advice", "undo", "mnemonic"), FLAG_ADVICES)
def test_flag_advice_splits_out_the_range(mm, advice, undo, mnemonic):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.touch(at(0), True)
    mm.madvise(at(1), 2 * P, advice)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 3, "rw-p"), (3, 4, "rw-p")]
    assert _has(mm, mnemonic) == [False, True, False]


@pytest.mark.parametrize(
    ("advice", "undo", "mnemonic"), [a for a in FLAG_ADVICES if a[1] != v.MADV_NORMAL]
    + [(v.MADV_RANDOM, v.MADV_NORMAL, "rr"), (v.MADV_SEQUENTIAL, v.MADV_NORMAL, "sr")]
)
def test_undoing_a_flag_advice_merges_back(mm, advice, undo, mnemonic):
    """Split and restore on a faulted VMA: the pieces share the anon_vma and re-merge."""
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.touch(at(0), True)
    mm.madvise(at(1), 2 * P, advice)
    mm.madvise(at(1), 2 * P, undo)
    assert layout(mm) == [(0, 4, "rw-p")]
    assert _has(mm, mnemonic) == [False]


def test_random_and_sequential_exclude_each_other(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.madvise(at(0), 2 * P, v.MADV_RANDOM)
    mm.madvise(at(0), 2 * P, v.MADV_SEQUENTIAL)
    assert flags_of(mm) == ["rd wr mr mw me sr ac"]


def test_hugepage_and_nohugepage_exclude_each_other(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.madvise(at(0), 2 * P, v.MADV_NOHUGEPAGE)
    mm.madvise(at(0), 2 * P, v.MADV_HUGEPAGE)
    assert flags_of(mm) == ["rd wr mr mw me ac hg"]


def test_unchanged_flags_do_not_split(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(1), P, v.MADV_DOFORK)
    mm.madvise(at(1), P, v.MADV_NORMAL)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_advised_range_merges_with_an_advised_neighbour(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(0), P, v.MADV_DONTDUMP)
    mm.madvise(at(1), P, v.MADV_DONTDUMP)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p")]


@pytest.mark.parametrize("kind", ["shared-anon", "memfd-private", "memfd-shared"])
def test_wipeonfork_needs_private_anonymous_memory(mm, kind):
    if kind == "shared-anon":
        mm.mmap(at(0), 2 * P, RW, SHANON)
    else:
        _memfd_map(mm, 0, 2, RW, v.MAP_SHARED if kind == "memfd-shared" else v.MAP_PRIVATE)
    assert errno_of(mm.madvise, at(0), P, v.MADV_WIPEONFORK) == errno.EINVAL
    assert layout(mm)[0][:2] == (0, 2)


@pytest.mark.parametrize("advice", [v.MADV_KEEPONFORK, v.MADV_DODUMP])
def test_droppable_refuses_keeponfork_and_dodump(mm, advice):
    mm.mmap(at(0), 2 * P, RW, DROPPABLE)
    assert errno_of(mm.madvise, at(0), P, advice) == errno.EINVAL
    assert layout(mm) == [(0, 2, "rw-p")]


@pytest.mark.parametrize("kind", ["shared-anon", "memfd-shared", "droppable"])
def test_mergeable_is_ignored_where_ksm_cannot_work(mm, kind):
    if kind == "shared-anon":
        mm.mmap(at(0), 2 * P, RW, SHANON)
    elif kind == "droppable":
        mm.mmap(at(0), 2 * P, RW, DROPPABLE)
    else:
        _memfd_map(mm, 0, 2, RW, v.MAP_SHARED)
    mm.madvise(at(0), P, v.MADV_MERGEABLE)
    assert len(layout(mm)) == 1
    assert _has(mm, "mg") == [False]


def test_mergeable_on_a_private_file_mapping(mm):
    _memfd_map(mm, 0, 2, RW, v.MAP_PRIVATE)
    mm.madvise(at(0), P, v.MADV_MERGEABLE)
    assert _has(mm, "mg") == [True, False]


def test_model_split_at_max_map_count_is_eagain():
    """madvise reports the ENOMEM of a failed split as EAGAIN (mprotect would say ENOMEM)."""
    mm = v.AddressSpace(max_map_count=1, debug=True)
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    assert errno_of(mm.madvise, at(1), P, v.MADV_DONTFORK) == errno.EAGAIN
    assert layout(mm) == [(0, 3, "rw-p")]


# -- page advices -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("advice", "want"),
    [
        (v.MADV_DONTNEED, errno.EINVAL),
        (v.MADV_DONTNEED_LOCKED, 0),
        (v.MADV_FREE, errno.EINVAL),
        (v.MADV_REMOVE, errno.EINVAL),
        (v.MADV_COLD, errno.EINVAL),
        (v.MADV_PAGEOUT, errno.EINVAL),
        (v.MADV_WILLNEED, 0),
        (v.MADV_GUARD_INSTALL, errno.EINVAL),
        (v.MADV_GUARD_REMOVE, 0),
        (v.MADV_POPULATE_READ, 0),
        (v.MADV_POPULATE_WRITE, 0),
    ],
)
def test_page_advice_on_locked_memory(mm, advice, want):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE | v.MAP_LOCKED)
    got = errno_of(mm.madvise, at(0), P, advice) if want else mm.madvise(at(0), P, advice)
    assert (got or 0) == want
    assert flags_of(mm) == ["rd wr mr mw me lo ac"]


@pytest.mark.parametrize(
    ("advice", "kind", "want"),
    [
        (v.MADV_FREE, "anon", 0),
        (v.MADV_FREE, "shared-anon", errno.EINVAL),
        (v.MADV_FREE, "memfd-private", errno.EINVAL),
        (v.MADV_REMOVE, "anon", errno.EINVAL),
        (v.MADV_REMOVE, "shared-anon", 0),
        (v.MADV_REMOVE, "memfd-private", errno.EACCES),
        (v.MADV_REMOVE, "memfd-shared", 0),
        (v.MADV_REMOVE, "memfd-shared-ro", 0),
        (v.MADV_DONTNEED, "memfd-private", 0),
        (v.MADV_COLD, "memfd-shared", 0),
        (v.MADV_PAGEOUT, "anon", 0),
        (v.MADV_WILLNEED, "memfd-shared", 0),
    ],
)
def test_page_advice_by_mapping_kind(mm, advice, kind, want):
    if kind == "anon":
        mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    elif kind == "shared-anon":
        mm.mmap(at(0), 2 * P, RW, SHANON)
    else:
        prot = RO if kind.endswith("-ro") else RW
        _memfd_map(mm, 0, 2, prot, v.MAP_PRIVATE if "private" in kind else v.MAP_SHARED)
    before = mm.maps()
    got = errno_of(mm.madvise, at(0), P, advice) if want else mm.madvise(at(0), P, advice)
    assert (got or 0) == want
    assert mm.maps() == before


def test_willneed_past_the_end_of_the_file_succeeds(mm):
    _memfd_map(mm, 0, 4, RW, v.MAP_SHARED, size_pages=2)
    mm.madvise(at(0), 4 * P, v.MADV_WILLNEED)


def test_dontneed_keeps_the_anon_vma(mm):
    """DONTNEED drops pages, not the anon_vma: the VMA still refuses a three-way merge."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    mm.touch(at(0), True)
    mm.touch(at(3), True)
    mm.madvise(at(0), 2 * P, v.MADV_DONTNEED)
    mm.mmap(at(2), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 3, "rw-p"), (3, 5, "rw-p")]


# -- guard markers ------------------------------------------------------------------------


def test_guard_install_marks_the_whole_vma_without_splitting(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(1), P, v.MADV_GUARD_INSTALL)
    assert layout(mm) == [(0, 4, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me gu ac"]


def test_guard_pages_fault_and_others_do_not(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.touch(at(1), True)
    mm.madvise(at(1), 2 * P, v.MADV_GUARD_INSTALL)
    assert errno_of(mm.touch, at(1)) == errno.EFAULT
    assert errno_of(mm.touch, at(2), True) == errno.EFAULT
    mm.touch(at(0), True)
    mm.touch(at(3))


def test_guard_remove_clears_markers_but_not_the_flag(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(0), 4 * P, v.MADV_GUARD_INSTALL)
    mm.madvise(at(1), P, v.MADV_GUARD_REMOVE)
    mm.touch(at(1), True)
    assert errno_of(mm.touch, at(2)) == errno.EFAULT
    assert flags_of(mm) == ["rd wr mr mw me gu ac"]


@pytest.mark.parametrize("advice", [v.MADV_DONTNEED, v.MADV_FREE, v.MADV_COLD])
def test_guards_survive_page_advices(mm, advice):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(1), P, v.MADV_GUARD_INSTALL)
    mm.madvise(at(0), 4 * P, advice)
    assert errno_of(mm.touch, at(1)) == errno.EFAULT


def test_guards_survive_remove_and_mprotect_of_a_shared_file(mm):
    _memfd_map(mm, 0, 4, RW, v.MAP_SHARED)
    mm.madvise(at(1), P, v.MADV_GUARD_INSTALL)
    mm.madvise(at(0), 4 * P, v.MADV_REMOVE)
    mm.mprotect(at(0), 4 * P, RO)
    assert errno_of(mm.touch, at(1)) == errno.EFAULT
    mm.touch(at(2))
    assert flags_of(mm) == ["rd sh mr mw me ms gu"]


def test_guard_install_across_a_hole_marks_both_vmas_then_enomem(mm):
    mm.mmap(at(1), 2 * P, RW, NOREPLACE)
    mm.mmap(at(4), 2 * P, v.PROT_NONE, NOREPLACE)
    assert errno_of(mm.madvise, at(0), 7 * P, v.MADV_GUARD_INSTALL) == errno.ENOMEM
    assert flags_of(mm) == ["rd wr mr mw me gu ac", "mr mw me gu"]


def test_guard_flag_is_sticky_in_merges(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.madvise(at(0), P, v.MADV_GUARD_INSTALL)
    mm.mmap(at(2), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 3, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me gu ac"]


def test_guard_install_gives_anonymous_memory_an_anon_vma(mm):
    assert _separately_written(mm, v.MADV_GUARD_INSTALL) == [(0, 3, "rw-p"), (3, 5, "rw-p")]


def test_guard_install_gives_a_private_file_mapping_no_anon_vma(mm):
    file = v.memfd_create("madv", 8 * P)
    assert _separately_written(mm, v.MADV_GUARD_INSTALL, file) == [(0, 5, "rw-p")]


def test_populate_write_gives_a_private_file_mapping_an_anon_vma(mm):
    file = v.memfd_create("madv", 8 * P)
    assert _separately_written(mm, v.MADV_POPULATE_WRITE, file) == [(0, 3, "rw-p"), (3, 5, "rw-p")]


# -- MADV_POPULATE_(READ|WRITE) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("prot", "advice", "want"),
    [
        (v.PROT_NONE, v.MADV_POPULATE_READ, errno.EINVAL),
        (v.PROT_NONE, v.MADV_POPULATE_WRITE, errno.EINVAL),
        (RO, v.MADV_POPULATE_WRITE, errno.EINVAL),
        (RO, v.MADV_POPULATE_READ, 0),
        (v.PROT_WRITE, v.MADV_POPULATE_READ, errno.EINVAL),
        (v.PROT_WRITE, v.MADV_POPULATE_WRITE, 0),
        (v.PROT_EXEC, v.MADV_POPULATE_READ, errno.EINVAL),
    ],
)
def test_populate_checks_the_access(mm, prot, advice, want):
    mm.mmap(at(0), 2 * P, prot, NOREPLACE)
    got = errno_of(mm.madvise, at(0), 2 * P, advice) if want else mm.madvise(at(0), 2 * P, advice)
    assert (got or 0) == want


@pytest.mark.parametrize("first", [0, 2])
def test_populate_over_a_hole_is_enomem(mm, first):
    mm.mmap(at(first), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.madvise, at(0), 5 * P, v.MADV_POPULATE_READ) == errno.ENOMEM


@pytest.mark.parametrize("advice", [v.MADV_POPULATE_READ, v.MADV_POPULATE_WRITE])
def test_populate_past_the_end_of_the_file_is_efault(mm, advice):
    _memfd_map(mm, 0, 4, RW, v.MAP_SHARED, size_pages=2)
    assert errno_of(mm.madvise, at(0), 4 * P, advice) == errno.EFAULT
    mm.madvise(at(0), 2 * P, advice)


def test_populate_of_a_guard_page_is_efault(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(1), P, v.MADV_GUARD_INSTALL)
    assert errno_of(mm.madvise, at(0), 4 * P, v.MADV_POPULATE_READ) == errno.EFAULT
    mm.madvise(at(2), 2 * P, v.MADV_POPULATE_WRITE)


def test_populate_write_gives_private_memory_an_anon_vma(mm):
    assert _separately_written(mm, v.MADV_POPULATE_WRITE) == [(0, 3, "rw-p"), (3, 5, "rw-p")]


@pytest.mark.parametrize("advice", [v.MADV_POPULATE_READ, v.MADV_WILLNEED, v.MADV_DONTNEED])
def test_read_populate_and_hints_give_no_anon_vma(mm, advice):
    assert _separately_written(mm, advice) == [(0, 5, "rw-p")]


def test_populate_write_before_a_hole_keeps_its_effect(mm):
    """Partial effect: the VMA before the hole was faulted (anon_vma) although the call
    failed with ENOMEM."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.madvise, at(0), 3 * P, v.MADV_POPULATE_WRITE) == errno.ENOMEM
    mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    mm.touch(at(3), True)
    mm.mmap(at(2), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 3, "rw-p"), (3, 5, "rw-p")]


# -- MADV_COLLAPSE ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["anon", "shared-anon"])
def test_collapse_of_a_vma_without_room_for_a_huge_page_is_einval(mm, kind):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE if kind == "anon" else SHANON)
    assert errno_of(mm.madvise, at(0), 4 * P, v.MADV_COLLAPSE) == errno.EINVAL


# -- VM_IO | VM_PFNMAP mappings (a device model: the host has no such driver to map) -------


def special_mm() -> v.AddressSpace:
    """A model with one page of the HPET device model (remapped: VM_IO | VM_PFNMAP |
    VM_DONTEXPAND | VM_DONTDUMP) at page 1, between two anonymous pages."""
    from vmamodel.drivers import hpet

    mm = v.AddressSpace(debug=True)
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mmap(at(1), P, RO, v.MAP_SHARED | v.MAP_FIXED, hpet.open_device(hpet.HpetDevice()), 0)
    mm.mmap(at(2), P, RW, NOREPLACE)
    return mm


@pytest.mark.parametrize(
    ("advice", "want"),
    [
        (v.MADV_DONTNEED, errno.EINVAL),
        (v.MADV_DONTNEED_LOCKED, errno.EINVAL),
        (v.MADV_FREE, errno.EINVAL),
        (v.MADV_DOFORK, errno.EINVAL),
        (v.MADV_DODUMP, errno.EINVAL),
        (v.MADV_COLD, errno.EINVAL),
        (v.MADV_PAGEOUT, errno.EINVAL),
        (v.MADV_GUARD_INSTALL, errno.EINVAL),
        (v.MADV_GUARD_REMOVE, errno.EINVAL),
        (v.MADV_POPULATE_READ, errno.EINVAL),
        (v.MADV_COLLAPSE, errno.EINVAL),
        (v.MADV_WILLNEED, 0),
        (v.MADV_MERGEABLE, 0),
        (v.MADV_DONTDUMP, 0),
    ],
)
def test_model_page_and_flag_advices_on_a_pfnmap(advice, want):
    mm = special_mm()
    before = [view.vm_flags for view in mm.vmas()]
    got = errno_of(mm.madvise, at(1), P, advice) if want else mm.madvise(at(1), P, advice)
    assert (got or 0) == want
    assert [view.vm_flags for view in mm.vmas()] == before


def test_model_dontfork_on_a_pfnmap_sets_the_flag_and_never_merges():
    mm = special_mm()
    mm.madvise(at(0), 3 * P, v.MADV_DONTFORK)
    assert [bool(view.vm_flags & v.VM.DONTCOPY) for view in mm.vmas()] == [True, True, True]
    assert len(mm.vmas()) == 3
