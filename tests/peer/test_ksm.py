"""The KSM cases of the kernel's mm selftests, at the level of VMAs, on the model and on the
host kernel (KSM is built in; ksmd need not run for any of this).

- merge.c ``ksm_merge``: with PR_SET_MEMORY_MERGE on, a new anonymous mapping next to an
  existing (now VM_MERGEABLE) one still merges, because the flag is set before the merge
  attempt (can_set_ksm_flags_early, ksm_vma_flags).
- ksm_functional_tests.c ``test_prctl``: the argument checks and the value GET returns;
  ``test_prctl_fork``: a fork keeps MMF_VM_MERGE_ANY; ``test_prot_none``: MADV_MERGEABLE on
  PROT_NONE memory succeeds; ``test_prctl_unmerge`` / ``test_unmerge``: PR_SET_MEMORY_MERGE 0
  and MADV_UNMERGEABLE take the flag away again.

The rest pins which VMAs qualify (vma_ksm_compatible) and how the flag splits and merges.
"""

from __future__ import annotations

import errno

import pytest

import vmamodel as v
from core.util import FIXED, NOREPLACE, RW, SHANON, P, at, flags_of, layout

from .util import errno_of

SET, GET = v.PR_SET_MEMORY_MERGE, v.PR_GET_MEMORY_MERGE
PLAIN = "rd wr mr mw me ac"
MG = "rd wr mr mw me ac mg"


def test_merge_c_ksm_merge(mm):
    mm.mmap(at(1), P, RW, FIXED)
    mm.mmap(at(2), P, RW, FIXED)
    assert layout(mm) == [(1, 3, "rw-p")]
    mm.munmap(at(2), P)
    assert mm.prctl(SET, 1) == 0
    assert flags_of(mm) == [MG]
    mm.mmap(at(2), P, RW, FIXED)
    assert layout(mm) == [(1, 3, "rw-p")]
    assert flags_of(mm) == [MG]
    mm.munmap(at(1), 2 * P)
    mm.mmap(at(1), P, RW, FIXED)
    mm.mmap(at(2), P, RW, FIXED)
    assert layout(mm) == [(1, 3, "rw-p")]
    assert flags_of(mm) == [MG]


def test_ksm_functional_test_prctl_arguments(mm):
    assert mm.prctl(GET) == 0
    assert errno_of(mm.prctl, SET, 1, 1) == errno.EINVAL
    assert errno_of(mm.prctl, SET, 1, 0, 1) == errno.EINVAL
    assert errno_of(mm.prctl, SET, 1, 0, 0, 1) == errno.EINVAL
    assert errno_of(mm.prctl, GET, 1) == errno.EINVAL
    assert errno_of(mm.prctl, GET, 0, 0, 0, 1) == errno.EINVAL
    assert mm.prctl(GET) == 0
    assert mm.prctl(SET, 7) == 0
    assert mm.prctl(GET) == 1
    assert mm.prctl(SET, 1) == 0
    assert mm.prctl(SET, 0) == 0
    assert mm.prctl(GET) == 0


def test_ksm_functional_test_prctl_fork_keeps_merge_any(mm):
    mm.prctl(SET, 1)
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    child = mm.fork()
    assert child.prctl(GET) == 1
    assert flags_of(child) == [MG]
    child.mmap(at(4), P, RW, NOREPLACE)
    assert flags_of(child) == [MG, MG]


def test_ksm_functional_test_prot_none(mm):
    mm.mmap(at(0), 2 * P, v.PROT_NONE, NOREPLACE)
    mm.madvise(at(0), 2 * P, v.MADV_MERGEABLE)
    assert flags_of(mm) == ["mr mw me mg"]


def test_ksm_functional_test_prctl_unmerge_clears_every_vma(mm):
    """ksm_del_vmas(): also the flag MADV_MERGEABLE set, and no merge follows."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.madvise(at(0), 2 * P, v.MADV_MERGEABLE)
    mm.mmap(at(2), P, v.PROT_READ, NOREPLACE)
    mm.prctl(SET, 1)
    assert flags_of(mm) == [MG, "rd mr mw me mg"]
    mm.prctl(SET, 0)
    assert flags_of(mm) == [PLAIN, "rd mr mw me"]


def test_ksm_functional_test_unmerge_splits_the_range(mm):
    mm.prctl(SET, 1)
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(1), P, v.MADV_UNMERGEABLE)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 4, "rw-p")]
    assert flags_of(mm) == [MG, PLAIN, MG]
    mm.madvise(at(1), P, v.MADV_MERGEABLE)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_enabling_merge_any_sets_the_flag_in_place_without_merging(mm):
    """ksm_add_vmas() changes flags in place: two VMAs kept apart only by VM_MERGEABLE
    become equal, yet stay two until a later change merges them."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(2), 2 * P, RW, NOREPLACE)
    mm.madvise(at(0), 2 * P, v.MADV_MERGEABLE)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p")]
    mm.prctl(SET, 1)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p")]
    assert flags_of(mm) == [MG, MG]
    mm.mprotect(at(2), 2 * P, RW)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p")]
    mm.madvise(at(2), 2 * P, v.MADV_SEQUENTIAL)
    mm.madvise(at(2), 2 * P, v.MADV_NORMAL)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_merge_any_leaves_incompatible_vmas_alone(mm, memfd):
    f = memfd("ksm", 4 * P)
    mm.mmap(at(0), P, RW, SHANON)
    mm.mmap(at(2), P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.mmap(at(4), P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f)
    mm.mmap(at(6), P, RW, (NOREPLACE & ~v.MAP_PRIVATE) | v.MAP_DROPPABLE)
    mm.prctl(SET, 1)
    mm.mmap(at(8), P, RW, SHANON)
    flags = flags_of(mm)
    assert [("mg" in f.split()) for f in flags] == [False, False, True, False, False]


def test_new_file_private_mapping_gets_the_flag_and_merges(mm, memfd):
    f = memfd("ksm", 4 * P)
    mm.prctl(SET, 1)
    mm.mmap(at(0), P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f)
    mm.mmap(at(1), P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f, P)
    assert layout(mm) == [(0, 2, "rw-p")]
    assert "mg" in flags_of(mm)[0].split()


def test_brk_gets_the_flag_and_grows_in_place(backend):
    mm = backend()
    base = mm.start_brk
    mm.prctl(SET, 1)
    mm.brk(base + P)
    mm.brk(base + 3 * P)
    heap = [view for view in mm.vmas() if view.vm_start == base]
    assert len(heap) == 1 and heap[0].vm_end == base + 3 * P
    assert heap[0].vm_flags & v.VM.MERGEABLE
    mm.brk(base)


@pytest.mark.parametrize("prot", [RW, v.PROT_READ])
def test_mergeable_advice_on_one_vma_of_two_equal_ones(mm, prot):
    mm.mmap(at(0), 4 * P, prot, NOREPLACE)
    mm.madvise(at(2), 2 * P, v.MADV_MERGEABLE)
    perms = "rw-p" if prot == RW else "r--p"
    assert layout(mm) == [(0, 2, perms), (2, 4, perms)]
    mm.madvise(at(0), 2 * P, v.MADV_MERGEABLE)
    assert len(layout(mm)) == 1


def test_regular_file_private_mapping_merges_under_merge_any(mm, regular_file):
    """The disk filesystem's files have .mmap_prepare (generic_file_mmap_prepare, and ext4's
    own): the flag is set early, and adjacent private mappings of the file merge."""
    f = regular_file(v.O_RDWR, 4 * P)
    mm.prctl(SET, 1)
    mm.mmap(at(0), P, v.PROT_READ, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f)
    mm.mmap(at(1), P, v.PROT_READ, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f, P)
    assert layout(mm) == [(0, 2, "r--p")]
    assert "mg" in flags_of(mm)[0].split()
