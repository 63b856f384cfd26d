"""MADV_COLLAPSE of whole aligned 2 MiB blocks, and msync / mincore / mlock over holes, on the
model and on the host kernel."""

from __future__ import annotations

import errno

import pytest

import vmamodel as v
from core.util import NOREPLACE, RO, RW, P, at, layout
from peer.util import errno_of, state
from vmamodel.msync import MS_ASYNC, MS_INVALIDATE, MS_SYNC

H = 2 << 20
HP = H // P


def hat(n):
    return at(n * HP)


# -- MADV_COLLAPSE --------------------------------------------------------------------------


def two_blocks(mm, prot=RW):
    mm.mmap(hat(0), 2 * H, prot, NOREPLACE)
    return mm


def test_collapse_of_written_blocks_succeeds_and_changes_no_vma(mm):
    two_blocks(mm)
    mm.touch(hat(0) + 5 * P, write=True)
    mm.touch(hat(1), write=True)
    before = state(mm)[0]
    mm.madvise(hat(0), 2 * H, v.MADV_COLLAPSE)
    assert mm.maps() == before


@pytest.mark.parametrize("touches", [(), ((0, False),), ((0, True),), ((0, False), (HP, False))])
def test_collapse_fails_when_a_block_has_no_written_page(mm, touches):
    two_blocks(mm)
    for page, write in touches:
        mm.touch(at(page), write=write)
    assert errno_of(mm.madvise, hat(0), 2 * H, v.MADV_COLLAPSE) == errno.EINVAL


def test_collapse_of_populated_memory_and_of_read_only_memory(mm):
    two_blocks(mm)
    mm.madvise(hat(0), 2 * H, v.MADV_POPULATE_WRITE)
    mm.mprotect(hat(0), 2 * H, RO)
    mm.madvise(hat(0), 2 * H, v.MADV_COLLAPSE)
    assert layout(mm) == [(0, 2 * HP, "r--p")]


def test_collapse_of_a_part_ignores_partial_blocks(mm):
    two_blocks(mm)
    mm.touch(hat(1), write=True)
    mm.madvise(hat(0) + P, 2 * H - P, v.MADV_COLLAPSE)  # only block 1 is whole


def test_collapse_after_fork_and_mremap(mm):
    two_blocks(mm)
    mm.touch(hat(0), write=True)
    mm.touch(hat(1), write=True)
    child = mm.fork()
    child.madvise(hat(0), 2 * H, v.MADV_COLLAPSE)
    mm.mremap(hat(0), 2 * H, 2 * H, v.MREMAP_MAYMOVE | v.MREMAP_FIXED, hat(4))
    mm.madvise(hat(4), 2 * H, v.MADV_COLLAPSE)
    mm.madvise(hat(4), H, v.MADV_DONTNEED)
    assert errno_of(mm.madvise, hat(4), 2 * H, v.MADV_COLLAPSE) == errno.EINVAL


# -- msync -----------------------------------------------------------------------------------


def holey(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    return mm


@pytest.mark.parametrize(
    ("start", "pages", "flags", "expected"),
    [
        (0, 2, MS_ASYNC, 0),
        (0, 5, MS_SYNC, errno.ENOMEM),
        (0, 5, MS_ASYNC, errno.ENOMEM),
        (0, 5, MS_ASYNC | MS_INVALIDATE, errno.ENOMEM),
        (0, 5, 0, errno.ENOMEM),
        (2, 1, MS_SYNC, errno.ENOMEM),
        (5, 2, MS_SYNC, errno.ENOMEM),
        (4, 3, MS_SYNC, errno.ENOMEM),
        (0, 0, MS_SYNC, 0),
        (0, 2, MS_ASYNC | MS_SYNC, errno.EINVAL),
        (0, 2, 8, errno.EINVAL),
    ],
)
def test_msync_over_holes(mm, start, pages, flags, expected):
    holey(mm)
    if expected:
        assert errno_of(mm.msync, at(start), pages * P, flags) == expected
    else:
        mm.msync(at(start), pages * P, flags)


def test_msync_unaligned_and_locked(mm):
    holey(mm)
    assert errno_of(mm.msync, at(0) + 1, P, MS_SYNC) == errno.EINVAL
    mm.mlock(at(0), 2 * P)
    assert errno_of(mm.msync, at(0), 2 * P, MS_INVALIDATE) == errno.EBUSY
    mm.msync(at(0), 2 * P, MS_SYNC)


# -- mincore ----------------------------------------------------------------------------------


def test_mincore_reports_faulted_anonymous_pages(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.touch(at(1), write=True)
    mm.touch(at(3))
    assert mm.mincore(at(0), 4 * P) == bytes([0, 1, 0, 1])
    assert mm.mincore(at(0), P + 1) == bytes([0, 1])
    assert mm.mincore(at(0), 0) == b""


def test_mincore_errors(mm):
    holey(mm)
    assert errno_of(mm.mincore, at(0) + 1, P) == errno.EINVAL
    assert errno_of(mm.mincore, at(0), 3 * P) == errno.ENOMEM
    assert errno_of(mm.mincore, at(2), P) == errno.ENOMEM
    assert errno_of(mm.mincore, at(0), v.TASK_SIZE) == errno.ENOMEM


# -- mlock -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "pages"), [(0, 5), (2, 1), (1, 3), (4, 2)])
def test_mlock_over_holes_is_enomem(mm, start, pages):
    holey(mm)
    assert errno_of(mm.mlock, at(start), pages * P) == errno.ENOMEM
    assert errno_of(mm.munlock, at(start), pages * P) == errno.ENOMEM
    assert errno_of(mm.mlock2, at(start), pages * P, v.MLOCK_ONFAULT) == errno.ENOMEM
