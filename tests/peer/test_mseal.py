"""mseal(2) (mm/mseal.c) and the refusals of sealed VMAs in munmap, MAP_FIXED mmap and
mprotect (vma_is_sealed() in mm/vma.h), on the model and on the host kernel.

The LTP rows (C55-C66) are in test_ltp_errno.py; this file pins the rest: how sealing splits
and merges, and the partial effects a refused call leaves behind. Each test gets a fresh
host child: a sealed mapping can never be unmapped, so the host oracle's ``reset()`` refuses
once anything is sealed (see test_reset_refuses_a_sealed_arena).
"""

from __future__ import annotations

import errno

import pytest

import vmamodel as v
from core.util import FIXED, NOREPLACE, RO, RW, SHANON, P, at, flags_of, layout

from .util import errno_of, state

SEALED_FLAGS = "rd wr mr mw me ac sl"
PLAIN_FLAGS = "rd wr mr mw me ac"


def test_sealing_the_middle_splits_and_sets_sl(mm):
    mm.mmap(at(0), 8 * P, RW, NOREPLACE)
    mm.mseal(at(2), P)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 3, "rw-p"), (3, 8, "rw-p")]
    assert flags_of(mm) == [PLAIN_FLAGS, SEALED_FLAGS, PLAIN_FLAGS]


def test_sealing_sealed_memory_again_changes_nothing(sealed):
    mm = sealed()
    before = state(mm)
    mm.mseal(at(2), P)
    mm.mseal(at(0), 0)
    assert state(mm) == before


def test_sealing_a_neighbour_merges_it_into_the_sealed_vma(sealed):
    """VM_SEALED is compared like any flag: equal flags merge (vma_modify_flags)."""
    mm = sealed()
    mm.mseal(at(3), P)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p"), (4, 8, "rw-p")]
    mm.mseal(at(0), 2 * P)
    assert layout(mm) == [(0, 4, "rw-p"), (4, 8, "rw-p")]
    assert flags_of(mm) == [SEALED_FLAGS, PLAIN_FLAGS]


def test_a_new_mapping_next_to_a_sealed_vma_merges_only_once_sealed(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mseal(at(0), 2 * P)
    mm.mmap(at(2), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 3, "rw-p")]
    mm.mseal(at(2), P)
    assert layout(mm) == [(0, 3, "rw-p")]


def test_one_seal_over_several_vmas_keeps_them_apart(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(2), P, RO, NOREPLACE)
    mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    mm.mseal(at(1), 3 * P)
    assert layout(mm) == [
        (0, 1, "rw-p"), (1, 2, "rw-p"), (2, 3, "r--p"), (3, 4, "rw-p"), (4, 5, "rw-p"),
    ]
    assert flags_of(mm) == [
        PLAIN_FLAGS, SEALED_FLAGS, "rd mr mw me sl", SEALED_FLAGS, PLAIN_FLAGS,
    ]


def test_file_and_shared_mappings_can_be_sealed(mm):
    f = v.memfd_create("sealme", 4 * P)
    mm.mmap(at(0), 2 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.mmap(at(4), 2 * P, RW, SHANON)
    mm.mseal(at(0), 2 * P)
    mm.mseal(at(5), P)
    assert flags_of(mm) == ["rd wr sh mr mw me ms sl", "rd wr sh mr mw me ms",
                            "rd wr sh mr mw me ms sl"]


def test_sealed_memory_is_still_readable_and_writable(sealed):
    mm = sealed()
    mm.touch(at(2), write=True)
    mm.touch(at(2))
    assert layout(mm) == [(0, 2, "rw-p"), (2, 3, "rw-p"), (3, 8, "rw-p")]


def test_unsealed_neighbours_can_still_be_unmapped_and_changed(sealed):
    mm = sealed()
    mm.munmap(at(3), 5 * P)
    mm.mprotect(at(0), 2 * P, RO)
    mm.mmap(at(0), P, RW, FIXED)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "r--p"), (2, 3, "rw-p")]


@pytest.mark.parametrize(("page", "count"), [(2, 1), (0, 3), (2, 6), (1, 2)])
def test_munmap_touching_a_sealed_vma_is_eperm(sealed, page, count):
    mm = sealed()
    before = state(mm)
    assert errno_of(mm.munmap, at(page), count * P) == errno.EPERM
    if page in (0, 2):  # the range starts on a VMA boundary: no split was made
        assert state(mm) == before


def test_refused_munmap_keeps_the_split_it_made_first(sealed):
    """vms_gather_munmap_vmas(): the split at the start of the range happens before the
    sealed VMA is reached; the refusal re-attaches the VMAs but the split stays."""
    mm = sealed()
    assert errno_of(mm.munmap, at(1), 7 * P) == errno.EPERM
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 3, "rw-p"), (3, 8, "rw-p")]


def test_refused_map_fixed_keeps_the_split_it_made_first(sealed):
    mm = sealed()
    assert errno_of(mm.mmap, at(1), 7 * P, RO, FIXED) == errno.EPERM
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 3, "rw-p"), (3, 8, "rw-p")]


def test_map_fixed_noreplace_over_a_sealed_vma_is_eexist(sealed):
    """The EEXIST check comes before any VMA is gathered."""
    mm = sealed()
    before = state(mm)
    assert errno_of(mm.mmap, at(2), P, RW, NOREPLACE) == errno.EEXIST
    assert state(mm) == before


def test_mprotect_of_a_sealed_vma_is_eperm_even_without_a_change(sealed):
    """mprotect_fixup() refuses a sealed VMA before it compares the flags."""
    mm = sealed()
    before = state(mm)
    assert errno_of(mm.mprotect, at(2), P, RW) == errno.EPERM
    assert state(mm) == before


def test_refused_mprotect_keeps_the_vmas_changed_before_the_seal(sealed):
    """do_mprotect_pkey() walks the VMAs in order and stops at the sealed one: [0,2) is
    already PROT_NONE, [3,8) untouched."""
    mm = sealed()
    assert errno_of(mm.mprotect, at(0), 8 * P, v.PROT_NONE) == errno.EPERM
    assert layout(mm) == [(0, 2, "---p"), (2, 3, "rw-p"), (3, 8, "rw-p")]


def test_sealing_at_the_map_count_limit_is_enomem_and_keeps_earlier_seals():
    """mseal_apply(): a split refused by max_map_count stops the walk; VMAs sealed before it
    stay sealed (model only: the host limit is 65530 maps, and the host process's own
    mappings count toward it)."""
    mm = v.AddressSpace(max_map_count=3, debug=True)
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(2), 2 * P, RO, NOREPLACE)
    mm.mmap(at(4), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.mseal, at(0), 5 * P) == errno.ENOMEM
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "r--p"), (4, 6, "rw-p")]
    assert flags_of(mm) == [SEALED_FLAGS, "rd mr mw me sl", PLAIN_FLAGS]


def test_fork_copies_the_seal_and_exit_frees_sealed_memory(sealed):
    """dup_mmap() copies vm_flags, VM_SEALED included; exit_mmap() ignores seals."""
    mm = sealed()
    child = mm.fork()
    try:
        assert flags_of(child) == flags_of(mm)
        assert errno_of(child.munmap, at(2), P) == errno.EPERM
        child.munmap(at(3), 5 * P)
        assert layout(child) == [(0, 2, "rw-p"), (2, 3, "rw-p")]
    finally:
        child.exit()
    assert layout(mm) == [(0, 2, "rw-p"), (2, 3, "rw-p"), (3, 8, "rw-p")]


# ---- madvise (can_madvise_modify) and mlock ----------------------------------------------


DISCARDS = [v.MADV_FREE, v.MADV_DONTNEED, v.MADV_DONTNEED_LOCKED, v.MADV_REMOVE,
            v.MADV_DONTFORK, v.MADV_WIPEONFORK, v.MADV_GUARD_INSTALL]


@pytest.mark.parametrize("prot", [RO, v.PROT_NONE])
@pytest.mark.parametrize("advice", DISCARDS)
def test_discarding_advice_on_sealed_unwritable_anonymous_memory_is_eperm(sealed, prot, advice):
    """can_madvise_modify(): is_discard() advices are refused on sealed anonymous memory
    without VM_WRITE, before the advice's own checks (REMOVE would be EINVAL otherwise)."""
    mm = sealed(prot)
    before = state(mm)
    assert errno_of(mm.madvise, at(2), P, advice) == errno.EPERM
    assert state(mm) == before


@pytest.mark.parametrize("advice", [v.MADV_DONTNEED, v.MADV_FREE, v.MADV_DONTFORK,
                                    v.MADV_WIPEONFORK, v.MADV_GUARD_INSTALL])
def test_discarding_advice_on_sealed_writable_memory_is_allowed(sealed, advice):
    mm = sealed(RW)
    mm.madvise(at(2), P, advice)
    assert len(layout(mm)) == 3


@pytest.mark.parametrize("advice", [v.MADV_NORMAL, v.MADV_RANDOM, v.MADV_DONTDUMP,
                                    v.MADV_DOFORK, v.MADV_KEEPONFORK, v.MADV_COLD,
                                    v.MADV_PAGEOUT, v.MADV_WILLNEED, v.MADV_GUARD_REMOVE,
                                    v.MADV_HUGEPAGE, v.MADV_MERGEABLE])
def test_other_advice_on_sealed_read_only_memory_is_allowed(sealed, advice):
    mm = sealed(RO)
    mm.madvise(at(2), P, advice)
    assert len(layout(mm)) == 3


def test_discarding_sealed_read_only_file_and_shared_memory_is_allowed(mm):
    """Only anonymous memory is protected: a private file mapping and shared anonymous
    memory (shmem, not vma_is_anonymous) may be discarded."""
    f = v.memfd_create("sealed", 4 * P)
    mm.mmap(at(0), 2 * P, RO, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f)
    mm.mmap(at(4), 2 * P, RO, SHANON)
    mm.mseal(at(0), 2 * P)
    mm.mseal(at(4), 2 * P)
    mm.madvise(at(0), 2 * P, v.MADV_DONTNEED)
    mm.madvise(at(4), 2 * P, v.MADV_DONTNEED)
    assert len(layout(mm)) == 2


def test_refused_madvise_keeps_the_changes_made_before_the_seal(sealed):
    """The walk applies DONTFORK to [0,2) before it reaches the sealed VMA and stops."""
    mm = sealed(RO)
    assert errno_of(mm.madvise, at(0), 8 * P, v.MADV_DONTFORK) == errno.EPERM
    assert flags_of(mm) == ["rd mr mw me dc", "rd mr mw me sl", "rd mr mw me"]


def test_flag_advice_splits_a_sealed_vma(sealed):
    """Sealing does not stop madvise from changing flags, so a sealed VMA can be split."""
    mm = sealed(RO)
    mm.mseal(at(3), 2 * P)
    mm.madvise(at(3), P, v.MADV_DONTDUMP)
    assert layout(mm) == [(0, 2, "r--p"), (2, 3, "r--p"), (3, 4, "r--p"), (4, 5, "r--p"),
                          (5, 8, "r--p")]
    assert flags_of(mm)[2:4] == ["rd mr mw me dd sl", "rd mr mw me sl"]


def test_mlock_of_sealed_memory_is_allowed(sealed):
    mm = sealed(RW)
    mm.mlock(at(0), 8 * P)
    assert flags_of(mm) == ["rd wr mr mw me lo ac", "rd wr mr mw me lo ac sl",
                            "rd wr mr mw me lo ac"]


# ---- the host oracle with sealed mappings -------------------------------------------------


@pytest.mark.host
def test_reset_refuses_a_sealed_arena():
    """A sealed mapping cannot be unmapped, so the oracle cannot empty its arena."""
    from vmamodel.host import HostAddressSpace

    with HostAddressSpace() as hs:
        hs.mmap(at(0), P, RW, NOREPLACE)
        hs.mseal(at(0), P)
        with pytest.raises(RuntimeError, match="sealed"):
            hs.reset()
        assert layout(hs) == [(0, 1, "rw-p")]


@pytest.mark.host
def test_sealing_in_a_fork_leaves_the_parent_reusable():
    """The documented way to reuse one child for sealing cases: seal in a fork."""
    from vmamodel.host import HostAddressSpace

    with HostAddressSpace() as hs:
        child = hs.fork()
        child.mmap(at(0), P, RW, NOREPLACE)
        child.mseal(at(0), P)
        assert flags_of(child) == [SEALED_FLAGS]
        child.close()
        hs.mmap(at(0), P, RW, NOREPLACE)
        hs.reset()
        assert hs.maps() == ""


# ---- mremap (check_prep_vma, and the unmaps mremap makes) ---------------------------------


@pytest.mark.parametrize(
    ("case", "args"),
    [
        ("no resize", (at(2), P, P, 0)),
        ("shrink", (at(2), P, P // 2, 0)),
        ("grow in place", (at(2), P, 2 * P, 0)),
        ("grow or move", (at(2), P, 2 * P, v.MREMAP_MAYMOVE)),
        ("move", (at(2), P, P, v.MREMAP_MAYMOVE | v.MREMAP_FIXED, at(20))),
        ("dontunmap", (at(2), P, P, v.MREMAP_MAYMOVE | v.MREMAP_DONTUNMAP, at(30))),
        ("onto the sealed vma", (at(20), P, P, v.MREMAP_MAYMOVE | v.MREMAP_FIXED, at(2))),
        ("shrinking move", (at(0), 8 * P, 2 * P, v.MREMAP_MAYMOVE | v.MREMAP_FIXED, at(40))),
    ],
)
def test_mremap_of_or_onto_a_sealed_vma_is_eperm_and_changes_nothing(sealed, case, args):
    """check_prep_vma() refuses any mremap of a sealed VMA, even one that changes nothing;
    a move onto it fails in the target unmap; a shrinking move whose source VMA is not sealed
    fails when the tail it unmaps reaches the sealed one (the range starts on a VMA boundary,
    so nothing was split first)."""
    mm = sealed()
    mm.mmap(at(20), P, RW, NOREPLACE)
    before = state(mm)
    assert errno_of(mm.mremap, *args) == errno.EPERM
    assert state(mm) == before


def test_mremap_not_resizing_across_a_sealed_vma_succeeds(sealed):
    """The VMA at the old address is not sealed, and a call that neither grows nor moves
    is not checked further."""
    mm = sealed()
    before = state(mm)
    assert mm.mremap(at(0), 8 * P, 8 * P) == at(0)
    assert state(mm) == before


def test_refused_mremap_shrink_keeps_the_split_it_made_first(sealed):
    """A shrink unmaps [new_len, old_len) with do_munmap: the split at its start is made
    before the sealed VMA refuses."""
    mm = sealed()
    assert errno_of(mm.mremap, at(0), 8 * P, P) == errno.EPERM
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 3, "rw-p"), (3, 8, "rw-p")]


def test_refused_fixed_move_has_already_unmapped_the_target(sealed):
    """MREMAP_FIXED unmaps the target range first, so when the shrink then meets the seal
    the mapping that stood at the target is gone."""
    mm = sealed()
    mm.mmap(at(40), 2 * P, RO, NOREPLACE)
    flags = v.MREMAP_MAYMOVE | v.MREMAP_FIXED
    assert errno_of(mm.mremap, at(0), 8 * P, 2 * P, flags, at(40)) == errno.EPERM
    assert layout(mm) == [(0, 2, "rw-p"), (2, 3, "rw-p"), (3, 8, "rw-p")]
