"""munmap and mprotect: splits, holes, partial effects and errno."""

from __future__ import annotations

import errno

import pytest

import vmamodel as v

from .util import FIXED, NOREPLACE, RO, RW, P, at, layout, vm_stats


def _errno(fn: object, *args: object) -> int:
    with pytest.raises(OSError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.errno or 0


def test_munmap_middle_leaves_two(mm):
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.munmap(at(1), P)
    assert layout(mm) == [(0, 1, "rw-p"), (2, 3, "rw-p")]


def test_munmap_across_holes_removes_what_is_there(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RO, NOREPLACE)
    mm.mmap(at(6), 2 * P, RW, NOREPLACE)
    mm.munmap(at(1), 6 * P)
    assert layout(mm) == [(0, 1, "rw-p"), (7, 8, "rw-p")]


def _four_vmas(mm: object) -> None:
    """Pages 0-8 as four touching two-page VMAs that cannot merge: rw, r, rw, r."""
    for page, prot in ((0, RW), (2, RO), (4, RW), (6, RO)):
        mm.mmap(at(page), 2 * P, prot, NOREPLACE)  # type: ignore[attr-defined]


def _delta(mm: object, backend: object, base: tuple[int, ...]) -> tuple[int, ...]:
    """(total_vm, data_vm) in pages since ``base``."""
    now = vm_stats(mm, backend)
    return (now[1] - base[1], now[2] - base[2])


def test_munmap_walks_touching_vmas_and_splits_both_ends(mm, backend):
    """vms_gather_munmap_vmas(): a head split in the first VMA, every VMA up to the end, a
    tail split in the last; total_vm and data_vm lose what went."""
    _four_vmas(mm)
    base = vm_stats(mm, backend)
    mm.munmap(at(1), 6 * P)
    assert layout(mm) == [(0, 1, "rw-p"), (7, 8, "r--p")]
    assert _delta(mm, backend, base) == (-6, -3)


def test_fixed_mmap_over_several_vmas_replaces_them(mm, backend):
    """__mmap_setup() gathers what a MAP_FIXED mapping replaces (both ends split), then the
    new VMA merges with the untouched rest of the last one."""
    _four_vmas(mm)
    base = vm_stats(mm, backend)
    assert mm.mmap(at(1), 6 * P, RO, FIXED) == at(1)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 8, "r--p")]
    assert _delta(mm, backend, base) == (0, -3)
    mm.munmap(at(0), 8 * P)
    assert layout(mm) == []
    assert _delta(mm, backend, base) == (-8, -4)


def test_mprotect_up_to_a_vma_end_leaves_the_next_alone(mm, backend):
    """The walk of do_mprotect_pkey() ends at the VMA that reaches the end of the range;
    vm_stat_account() moves the pages out of data_vm and back."""
    _four_vmas(mm)
    base = vm_stats(mm, backend)
    mm.mprotect(at(0), 2 * P, v.PROT_NONE)
    assert layout(mm) == [(0, 2, "---p"), (2, 4, "r--p"), (4, 6, "rw-p"), (6, 8, "r--p")]
    assert _delta(mm, backend, base) == (0, -2)
    mm.mprotect(at(0), 2 * P, RW)
    assert _delta(mm, backend, base) == (0, 0)
    mm.mprotect(at(5), 2 * P, RO)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "r--p"), (4, 5, "rw-p"), (5, 8, "r--p")]
    assert _delta(mm, backend, base) == (0, -1)


def test_munmap_of_a_hole_succeeds(mm):
    mm.munmap(at(10), 4 * P)
    assert layout(mm) == []


@pytest.mark.parametrize(("offset", "length"), [(0, 0), (1, P)])
def test_munmap_bad_arguments(mm, offset, length):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _errno(mm.munmap, at(0) + offset, length) == errno.EINVAL


def test_munmap_unaligned_length_rounds_up(mm):
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.munmap(at(0), P + 1)
    assert layout(mm) == [(2, 3, "rw-p")]


def test_mprotect_unaligned_address_is_einval(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _errno(mm.mprotect, at(0) + 1, P, RO) == errno.EINVAL


def test_mprotect_zero_length_succeeds_anywhere(mm):
    mm.mprotect(at(50), 0, RO)


def test_mprotect_unknown_prot_is_einval(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert _errno(mm.mprotect, at(0), P, 0x101) == errno.EINVAL


def test_mprotect_unaligned_length_rounds_up(mm):
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.mprotect(at(0), P + 1, RO)
    assert layout(mm) == [(0, 2, "r--p"), (2, 3, "rw-p")]


def test_mprotect_starting_in_a_hole_is_enomem_and_changes_nothing(mm):
    mm.mmap(at(1), 2 * P, RW, NOREPLACE)
    before = mm.maps()
    assert _errno(mm.mprotect, at(0), 3 * P, RO) == errno.ENOMEM
    assert mm.maps() == before


def test_mprotect_over_a_hole_changes_what_came_before(mm):
    """Partial effect documented by the kernel: VMAs before the hole stay changed."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    assert _errno(mm.mprotect, at(0), 5 * P, RO) == errno.ENOMEM
    assert layout(mm) == [(0, 2, "r--p"), (3, 5, "rw-p")]


def test_mprotect_past_the_last_vma_is_enomem_after_changing_it(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _errno(mm.mprotect, at(0), 3 * P, RO) == errno.ENOMEM
    assert layout(mm) == [(0, 2, "r--p")]


def test_mprotect_of_nothing_is_enomem(mm):
    """LTP mprotect01/1 (there at address 0): nothing mapped in the range."""
    assert _errno(mm.mprotect, at(100), P + 1, RO) == errno.ENOMEM


def test_mprotect_over_several_vmas_merges_them(mm):
    mm.mmap(at(0), P, RO, NOREPLACE)
    mm.mmap(at(1), P, v.PROT_EXEC, NOREPLACE)
    mm.mmap(at(2), P, v.PROT_NONE, NOREPLACE)
    mm.mprotect(at(0), 3 * P, v.PROT_NONE)
    assert layout(mm) == [(0, 3, "---p")]


def test_mprotect_exec_on_anonymous_is_allowed(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mprotect(at(0), P, v.PROT_READ | v.PROT_EXEC)
    assert layout(mm) == [(0, 1, "r-xp")]


def test_model_munmap_middle_at_max_map_count_is_enomem():
    mm = v.AddressSpace(max_map_count=3, debug=True)
    for i in range(3):
        mm.mmap(at(4 * i), 3 * P, RW, NOREPLACE)
    assert _errno(mm.munmap, at(1), P) == errno.ENOMEM
    mm.munmap(at(0), P)  # a head needs no extra VMA
    assert len(layout(mm)) == 3


def test_model_mprotect_split_at_max_map_count_is_enomem():
    mm = v.AddressSpace(max_map_count=2, debug=True)
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.mmap(at(4), 3 * P, RW, NOREPLACE)
    assert _errno(mm.mprotect, at(1), P, RO) == errno.ENOMEM
    assert layout(mm) == [(0, 3, "rw-p"), (4, 7, "rw-p")]
