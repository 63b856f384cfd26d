"""userfaultfd registration (UFFDIO_REGISTER / UFFDIO_UNREGISTER / close): the um/uw/ui
VmFlags, the splits and merges, contexts that never merge, and the errno of the checks, on
the model and on the host kernel."""

from __future__ import annotations

import errno

import pytest

import vmamodel as v
from core.util import NOREPLACE, RO, RW, SHANON, P, at, flags_of, layout
from peer.util import errno_of, state
from vmamodel import userfaultfd as uf
from vmamodel.userfaultfd import UFFD_API_RANGE_IOCTLS

MISSING = uf.UFFDIO_REGISTER_MODE_MISSING
WP = uf.UFFDIO_REGISTER_MODE_WP
MINOR = uf.UFFDIO_REGISTER_MODE_MINOR

PLAIN = "rd wr mr mw me ac"
UM = "rd wr mr mw me um ac"
UW = "rd wr mr mw me uw ac"
UMW = "rd wr mr mw me um uw ac"


def test_register_the_middle_splits_and_unregister_merges(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    uffd = mm.userfaultfd()
    ioctls = mm.uffdio_register(uffd, at(1), 2 * P, MISSING)
    assert ioctls == UFFD_API_RANGE_IOCTLS & ~(1 << 6 | 1 << 7)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 3, "rw-p"), (3, 4, "rw-p")]
    assert flags_of(mm) == [PLAIN, UM, PLAIN]
    mm.uffdio_unregister(uffd, at(1), 2 * P)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_modes_and_their_flags(mm):
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    uffd = mm.userfaultfd()
    assert mm.uffdio_register(uffd, at(0), P, MISSING | WP) == UFFD_API_RANGE_IOCTLS & ~(1 << 7)
    mm.uffdio_register(uffd, at(1), P, WP)
    assert flags_of(mm) == [UMW, UW, PLAIN]
    mm.uffdio_register(uffd, at(0), P, WP)  # has all the bits: unchanged
    mm.uffdio_register(uffd, at(1), P, MISSING)  # replaces WP
    assert flags_of(mm) == [UMW, UM, PLAIN]


def test_minor_needs_shmem(mm):
    f = v.memfd_create("uffd", 4 * P)
    mm.mmap(at(0), 2 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.mmap(at(2), 2 * P, RW, NOREPLACE)
    uffd = mm.userfaultfd()
    mm.uffdio_register(uffd, at(0), 2 * P, MINOR)
    assert "ui" in flags_of(mm)[0].split()
    assert errno_of(mm.uffdio_register, uffd, at(2), 2 * P, MINOR) == errno.EINVAL
    mm.mmap(at(4), 2 * P, RW, SHANON)
    mm.uffdio_register(uffd, at(4), 2 * P, MINOR | MISSING)


def test_two_contexts_never_merge_and_the_second_is_busy(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    one, two = mm.userfaultfd(), mm.userfaultfd()
    mm.uffdio_register(one, at(0), 2 * P, MISSING)
    mm.uffdio_register(two, at(2), 2 * P, MISSING)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p")]
    assert flags_of(mm) == [UM] * 2
    assert errno_of(mm.uffdio_register, two, at(1), 2 * P, MISSING) == errno.EBUSY
    # Only the context that registered a VMA may unregister it.
    assert errno_of(mm.uffdio_unregister, one, at(2), 2 * P) == errno.EINVAL
    assert errno_of(mm.uffdio_unregister, one, at(0), 4 * P) == errno.EINVAL
    mm.uffdio_unregister(two, at(2), 2 * P)
    mm.uffdio_register(one, at(2), 2 * P, MISSING)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_same_context_merges_on_register(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    uffd = mm.userfaultfd()
    mm.uffdio_register(uffd, at(0), P, MISSING)
    mm.uffdio_register(uffd, at(2), P, MISSING)
    mm.uffdio_register(uffd, at(1), P, MISSING)
    assert layout(mm) == [(0, 3, "rw-p"), (3, 4, "rw-p")]


def test_close_unregisters_everything(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.mmap(at(5), P, RW, NOREPLACE)
    uffd = mm.userfaultfd()
    mm.uffdio_register(uffd, at(1), 5 * P, MISSING | WP)
    assert len(layout(mm)) == 3
    mm.uffd_close(uffd)
    assert layout(mm) == [(0, 4, "rw-p"), (5, 6, "rw-p")]
    assert flags_of(mm) == [PLAIN, PLAIN]


def test_a_new_mapping_next_to_a_registered_vma_stays_apart(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    uffd = mm.userfaultfd()
    mm.uffdio_register(uffd, at(0), 2 * P, MISSING)
    mm.mmap(at(2), 2 * P, RW, NOREPLACE)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p")]
    mm.mprotect(at(0), 4 * P, RW)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p")]
    mm.uffdio_register(uffd, at(2), 2 * P, MISSING)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_mprotect_and_madvise_keep_the_registration(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    uffd = mm.userfaultfd()
    mm.uffdio_register(uffd, at(0), 4 * P, MISSING)
    mm.mprotect(at(1), P, RO)
    mm.madvise(at(3), P, v.MADV_DONTFORK)
    assert flags_of(mm) == [UM, "rd mr mw me um", UM,
                            "rd wr mr mw me um dc ac"]
    mm.mprotect(at(1), P, RW)
    assert layout(mm) == [(0, 3, "rw-p"), (3, 4, "rw-p")]


def test_fork_and_mremap_drop_the_registration(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    uffd = mm.userfaultfd()
    mm.uffdio_register(uffd, at(0), 4 * P, MISSING)
    child = mm.fork()
    assert flags_of(child) == [PLAIN]
    mm.mremap(at(2), 2 * P, 2 * P, v.MREMAP_MAYMOVE | v.MREMAP_FIXED, at(8))
    assert flags_of(mm) == [UM, PLAIN]


def test_holes_are_allowed_but_not_an_empty_range(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mmap(at(2), P, RW, NOREPLACE)
    uffd = mm.userfaultfd()
    mm.uffdio_register(uffd, at(0), 4 * P, MISSING)
    assert flags_of(mm) == [UM] * 2
    assert errno_of(mm.uffdio_register, uffd, at(4), 2 * P, MISSING) == errno.EINVAL
    mm.uffdio_unregister(uffd, at(0), 4 * P)
    assert errno_of(mm.uffdio_unregister, uffd, at(4), 2 * P) == errno.EINVAL


@pytest.mark.parametrize(
    ("start", "length", "mode"),
    [
        (at(0), P, 0),
        (at(0), P, 8),
        (at(0) + 1, P, MISSING),
        (at(0), P + 1, MISSING),
        (at(0), 0, MISSING),
        (0, P, MISSING),
        (v.TASK_SIZE, P, MISSING),
        (at(0), v.TASK_SIZE, MISSING),
    ],
)
def test_bad_registrations_are_einval(mm, start, length, mode):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    uffd = mm.userfaultfd()
    before = state(mm)
    assert errno_of(mm.uffdio_register, uffd, start, length, mode) == errno.EINVAL
    assert state(mm) == before


def test_which_vmas_qualify(mm, regular_file):
    uffd = mm.userfaultfd()
    f = regular_file(v.O_RDWR, 4 * P)
    mm.mmap(at(0), P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f)
    assert errno_of(mm.uffdio_register, uffd, at(0), P, MISSING) == errno.EINVAL
    assert errno_of(mm.uffdio_unregister, uffd, at(0), P) == errno.EINVAL
    mm.mmap(at(2), P, RW, (NOREPLACE & ~v.MAP_PRIVATE) | v.MAP_DROPPABLE)
    assert errno_of(mm.uffdio_register, uffd, at(2), P, MISSING) == errno.EINVAL
    # A PROT_NONE private mapping still has VM_MAYWRITE.
    mm.mmap(at(6), P, v.PROT_NONE, NOREPLACE)
    mm.uffdio_register(uffd, at(6), P, MISSING | WP)


def test_unknown_userfaultfd_flags(mm):
    assert errno_of(mm.userfaultfd, 0o2) == errno.EINVAL


def test_wp_async_allows_any_memory_for_wp_alone(mm, regular_file):
    uffd = mm.userfaultfd(0, 1 << 15)
    f = regular_file(v.O_RDWR, 4 * P)
    mm.mmap(at(0), P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f)
    mm.uffdio_register(uffd, at(0), P, WP)
    assert errno_of(mm.uffdio_register, uffd, at(0), P, WP | MISSING) == errno.EINVAL
