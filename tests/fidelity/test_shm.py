"""System V shared memory (shmget/shmat/shmdt/shmctl IPC_RMID) and mmap of /dev/zero, on the
model and on the host kernel. Segments are IPC_PRIVATE: keys are system-wide."""

from __future__ import annotations

import errno
import os

import pytest

import vmamodel as v
from core.util import FIXED, NOREPLACE, RO, RW, P, at, flags_of, layout
from peer.util import errno_of, state
from vmamodel.devzero import open_dev_zero
from vmamodel.shm import (
    IPC_CREAT,
    IPC_EXCL,
    IPC_PRIVATE,
    SHM_RDONLY,
    SHM_REMAP,
    SHM_RND,
)

SHARED = "rd wr sh mr mw me ms"


def names(mm):
    return [view.name for view in mm.vmas()]


def segment(mm, size=4 * P):
    return mm.shmget(IPC_PRIVATE, size, IPC_CREAT | 0o600)


def test_attach_shows_a_deleted_sysv_file(mm):
    shmid = segment(mm)
    assert mm.shmat(shmid, at(0)) == at(0)
    assert layout(mm) == [(0, 4, "rw-s")]
    assert names(mm) == ["/SYSV00000000 (deleted)"]
    assert flags_of(mm) == [SHARED]
    mm.shmdt(at(0))
    assert layout(mm) == []


def test_an_odd_size_maps_whole_pages(mm):
    shmid = segment(mm, 3 * P + 5)
    mm.shmat(shmid, at(0))
    assert layout(mm) == [(0, 4, "rw-s")]


def test_two_attaches_never_merge(mm):
    shmid = segment(mm, 2 * P)
    mm.shmat(shmid, at(0))
    mm.shmat(shmid, at(2))
    assert layout(mm) == [(0, 2, "rw-s"), (2, 4, "rw-s")]
    mm.shmdt(at(2))
    assert layout(mm) == [(0, 2, "rw-s")]


def test_read_only_attach(mm):
    shmid = segment(mm)
    mm.shmat(shmid, at(0), SHM_RDONLY)
    assert layout(mm) == [(0, 4, "r--s")]
    assert flags_of(mm) == ["rd mr me ms"]
    assert errno_of(mm.mprotect, at(0), P, RW) == errno.EACCES


def test_address_checks(mm):
    shmid = segment(mm)
    before = state(mm)
    assert errno_of(mm.shmat, shmid, at(0) + 8) == errno.EINVAL
    assert errno_of(mm.shmat, shmid, 0, SHM_REMAP) == errno.EINVAL
    assert errno_of(mm.shmat, shmid + 1000, at(0)) == errno.EINVAL
    assert errno_of(mm.shmat, -1, at(0)) == errno.EINVAL
    assert state(mm) == before
    assert mm.shmat(shmid, at(0) + 8, SHM_RND) == at(0)


def test_remap_replaces_and_without_it_overlap_is_einval(mm):
    shmid = segment(mm)
    mm.mmap(at(2), 4 * P, RW, NOREPLACE)
    before = state(mm)
    assert errno_of(mm.shmat, shmid, at(0)) == errno.EINVAL
    assert state(mm) == before
    mm.shmat(shmid, at(0), SHM_REMAP)
    assert layout(mm) == [(0, 4, "rw-s"), (4, 6, "rw-p")]


def test_shmdt_of_a_segment_split_by_mprotect(mm):
    shmid = segment(mm, 6 * P)
    mm.shmat(shmid, at(0))
    mm.mmap(at(6), P, RW, NOREPLACE)
    mm.mprotect(at(1), P, RO)
    mm.mprotect(at(4), P, RO)
    assert len(layout(mm)) == 6
    mm.mprotect(at(1), P, RW)  # shm_vm_ops has close: the middle cannot be merged away
    assert len(layout(mm)) == 6
    mm.shmdt(at(0))
    assert layout(mm) == [(6, 7, "rw-p")]


def test_shmdt_after_a_partial_munmap(mm):
    shmid = segment(mm)
    mm.shmat(shmid, at(0))
    mm.munmap(at(0), P)
    assert errno_of(mm.shmdt, at(1)) == errno.EINVAL  # pgoff 1 is not at distance 0
    mm.shmdt(at(0))
    assert layout(mm) == []


def test_shmdt_needs_an_attach(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert errno_of(mm.shmdt, at(0)) == errno.EINVAL
    assert errno_of(mm.shmdt, at(0) + 1) == errno.EINVAL


def test_rmid_keeps_an_attached_segment_until_the_last_detach(mm):
    shmid = segment(mm)
    mm.shmat(shmid, at(0))
    mm.shmctl_rmid(shmid)
    mm.shmat(shmid, at(8))  # Linux allows attaching a removed, still attached segment
    mm.shmdt(at(0))
    mm.shmdt(at(8))
    assert errno_of(mm.shmat, shmid, at(0)) == errno.EINVAL
    assert errno_of(mm.shmctl_rmid, shmid) == errno.EINVAL


def test_fork_shares_the_attach(mm):
    shmid = segment(mm)
    mm.shmat(shmid, at(0))
    mm.shmctl_rmid(shmid)
    child = mm.fork()
    mm.shmdt(at(0))
    assert names(child) == ["/SYSV00000000 (deleted)"]
    child.shmat(shmid, at(8))
    assert len(layout(child)) == 2


def test_shmget_errors(mm):
    assert errno_of(mm.shmget, IPC_PRIVATE, 0, IPC_CREAT | 0o600) == errno.EINVAL
    key = 0x7A6B0000 + (os.getpid() & 0xFFFF)
    assert errno_of(mm.shmget, key, P, 0o600) == errno.ENOENT
    shmid = mm.shmget(key, P, IPC_CREAT | IPC_EXCL | 0o600)
    try:
        assert mm.shmget(key, P, 0o600) == shmid
        assert errno_of(mm.shmget, key, P, IPC_CREAT | IPC_EXCL | 0o600) == errno.EEXIST
        assert errno_of(mm.shmget, key, 2 * P, 0o600) == errno.EINVAL
        mm.shmat(shmid, at(0))
        assert names(mm) == [f"/SYSV{key:08x} (deleted)"]
    finally:
        mm.shmctl_rmid(shmid)


def test_uffd_refuses_sysv_shm(mm):
    """vma_is_shmem() is false for shm_vm_ops: userfaultfd cannot register SysV shm."""
    shmid = segment(mm)
    mm.shmat(shmid, at(0))
    uffd = mm.userfaultfd()
    assert errno_of(mm.uffdio_register, uffd, at(0), P, 1) == errno.EINVAL


# -- /dev/zero -------------------------------------------------------------------------


@pytest.fixture
def zero():
    st = os.stat("/dev/zero")
    return open_dev_zero(v.O_RDWR, dev=(os.major(st.st_dev), os.minor(st.st_dev)),
                         ino=st.st_ino)


def test_private_dev_zero_is_anonymous_memory_named_dev_zero(mm, zero):
    mm.mmap(at(0), 2 * P, RW, v.MAP_PRIVATE | v.MAP_FIXED, zero, P)
    assert layout(mm) == [(0, 2, "rw-p")]
    assert names(mm) == ["/dev/zero"]
    assert flags_of(mm) == ["rd wr mr mw me ac"]
    assert mm.vmas()[0].vm_pgoff == 1
    mm.touch(at(0), write=True)
    mm.madvise(at(0), P, v.MADV_FREE)  # anonymous memory: MADV_FREE works


def test_private_dev_zero_merges_like_a_file_not_like_anonymous_memory(mm, zero):
    mm.mmap(at(0), 2 * P, RW, v.MAP_PRIVATE | v.MAP_FIXED, zero, 0)
    mm.mmap(at(2), 2 * P, RW, v.MAP_PRIVATE | v.MAP_FIXED, zero, 2 * P)
    assert layout(mm) == [(0, 4, "rw-p")]
    mm.mmap(at(4), 2 * P, RW, FIXED)
    mm.mmap(at(6), 2 * P, RW, v.MAP_PRIVATE | v.MAP_FIXED, zero, 0)
    assert layout(mm) == [(0, 4, "rw-p"), (4, 6, "rw-p"), (6, 8, "rw-p")]


def test_shared_dev_zero_is_shared_anonymous_memory(mm, zero):
    mm.mmap(at(0), 2 * P, RW, v.MAP_SHARED | v.MAP_FIXED, zero, 0)
    mm.mmap(at(2), 2 * P, RW, v.MAP_SHARED | v.MAP_FIXED, zero, 2 * P)
    assert layout(mm) == [(0, 2, "rw-s"), (2, 4, "rw-s")]
    assert names(mm) == ["/dev/zero (deleted)"] * 2
    assert flags_of(mm) == [SHARED, SHARED]
