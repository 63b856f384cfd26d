"""hugetlb mappings (MAP_HUGETLB, SHM_HUGETLB): sizes, alignment and length rules, the errno
without reserved pages, the ``ht`` flag and splits refused off huge page boundaries, on the
model and on the host kernel. The host pool is set with vm.nr_hugepages for each test and
restored afterwards."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vmamodel as v
from core.util import RW, P, at, flags_of, layout
from peer.util import errno_of, state
from vmamodel.shm import IPC_CREAT, IPC_PRIVATE, SHM_HUGETLB

H = 2 << 20
HP = H // P
NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
HUGE_ANON = v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_HUGETLB
HUGE_SHARED = v.MAP_SHARED | v.MAP_ANONYMOUS | v.MAP_HUGETLB
PRIVATE_FLAGS = "rd wr mr mw me de ht"
SHARED_FLAGS = "rd wr sh mr mw me ms de ht"


RESV_HUGEPAGES = Path("/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages")


def set_pool(pages: int) -> int:
    """Make ``pages`` huge pages free and unreserved; returns how many the host found.
    Reservations nobody holds any more (a leak, see test_mremap_of_hugetlb) are counted
    as taken, so the pool is grown past them."""
    leaked = int(RESV_HUGEPAGES.read_text())
    NR_HUGEPAGES.write_text(f"{pages + leaked}\n")
    return int(NR_HUGEPAGES.read_text()) - leaked


@pytest.fixture
def pool(backend: Any) -> Iterator[Any]:
    """``pool(n)``: a fresh address space with n free 2 MiB huge pages (fewer if the host
    cannot find the memory: the model gets what the host got)."""
    old = int(NR_HUGEPAGES.read_text())

    def make(pages: int) -> Any:
        if backend.is_host:
            assert set_pool(pages) == pages, "the host could not reserve the huge pages"
            return backend()
        return backend(hugetlb_pages={H: pages})

    try:
        yield make
    finally:
        backend.close()
        NR_HUGEPAGES.write_text(f"{old}\n")


def hat(n: int) -> int:
    """The address of huge page n of the arena."""
    return at(n * HP)


def names(mm: Any) -> list[str]:
    return [view.name for view in mm.vmas()]


def test_no_reserved_pages_is_enomem(pool):
    mm = pool(0)
    assert errno_of(mm.mmap, hat(0), H, RW, HUGE_ANON | v.MAP_FIXED) == errno.ENOMEM
    assert errno_of(mm.mmap, hat(0), H, RW, HUGE_SHARED | v.MAP_FIXED) == errno.ENOMEM
    assert layout(mm) == []
    mm.mmap(hat(0), H, RW, HUGE_ANON | v.MAP_FIXED | v.MAP_NORESERVE)
    assert flags_of(mm) == ["rd wr mr mw me de nr ht"]


def test_private_and_shared_mappings(pool):
    mm = pool(4)
    mm.mmap(hat(0), H, RW, HUGE_ANON | v.MAP_FIXED)
    mm.mmap(hat(1), 2 * H, RW, HUGE_SHARED | v.MAP_FIXED)
    assert layout(mm) == [(0, HP, "rw-p"), (HP, 3 * HP, "rw-s")]
    assert flags_of(mm) == [PRIVATE_FLAGS, SHARED_FLAGS]
    assert names(mm) == ["/anon_hugepage (deleted)"] * 2
    # Three of four pages are reserved: a second page does not fit.
    assert errno_of(mm.mmap, hat(4), 2 * H, RW, HUGE_ANON | v.MAP_FIXED) == errno.ENOMEM
    mm.munmap(hat(1), 2 * H)
    mm.mmap(hat(4), 2 * H, RW, HUGE_ANON | v.MAP_FIXED)


def test_adjacent_huge_mappings_never_merge(pool):
    mm = pool(2)
    mm.mmap(hat(0), H, RW, HUGE_ANON | v.MAP_FIXED)
    mm.mmap(hat(1), H, RW, HUGE_ANON | v.MAP_FIXED)
    assert layout(mm) == [(0, HP, "rw-p"), (HP, 2 * HP, "rw-p")]


def test_length_is_rounded_up_and_addresses_must_be_aligned(pool):
    mm = pool(2)
    mm.mmap(hat(0), P, RW, HUGE_ANON | v.MAP_FIXED)
    assert layout(mm) == [(0, HP, "rw-p")]
    before = state(mm)
    assert errno_of(mm.mmap, hat(2) + P, H, RW, HUGE_ANON | v.MAP_FIXED) == errno.EINVAL
    assert state(mm) == before


def test_placement_is_huge_page_aligned(pool):
    mm = pool(1)
    mm.mmap(at(1), P, RW, v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED)
    addr = mm.mmap(at(1), H, RW, HUGE_ANON)  # hint: rounded up to the next huge page
    assert addr == hat(1)


@pytest.mark.parametrize("log", [20, 22, 29, 31, 12])
def test_unknown_sizes_are_einval(pool, log):
    mm = pool(1)
    flags = HUGE_ANON | v.MAP_FIXED | log << v.MAP_HUGE_SHIFT
    assert errno_of(mm.mmap, hat(0), H, RW, flags) == errno.EINVAL


def test_explicit_sizes(pool):
    mm = pool(1)
    mm.mmap(hat(0), H, RW, HUGE_ANON | v.MAP_FIXED | v.MAP_HUGE_2MB)
    assert flags_of(mm) == [PRIVATE_FLAGS]
    # No 1 GiB page is reserved; the size exists, so this is ENOMEM, not EINVAL.
    gig = at(1 << 18)
    assert errno_of(mm.mmap, gig, 1 << 30, RW, HUGE_ANON | v.MAP_FIXED | v.MAP_HUGE_1GB) \
        == errno.ENOMEM
    assert errno_of(mm.mmap, gig + H, 1 << 30, RW,
                    HUGE_ANON | v.MAP_FIXED | v.MAP_HUGE_1GB) == errno.EINVAL


def test_splits_only_at_huge_page_boundaries(pool):
    mm = pool(4)
    mm.mmap(hat(0), 4 * H, RW, HUGE_ANON | v.MAP_FIXED)
    before = state(mm)
    assert errno_of(mm.mprotect, hat(1) + P, H, v.PROT_READ) == errno.EINVAL
    assert errno_of(mm.munmap, hat(0), P) == errno.EINVAL
    assert errno_of(mm.munmap, hat(0), H + P) == errno.EINVAL
    assert state(mm) == before
    mm.mprotect(hat(1), H, v.PROT_READ)
    assert layout(mm) == [(0, HP, "rw-p"), (HP, 2 * HP, "r--p"), (2 * HP, 4 * HP, "rw-p")]
    mm.munmap(hat(3), H)
    assert len(layout(mm)) == 3


def test_munmap_returns_the_reservation(pool):
    mm = pool(2)
    mm.mmap(hat(0), 2 * H, RW, HUGE_ANON | v.MAP_FIXED)
    assert errno_of(mm.mmap, hat(4), H, RW, HUGE_ANON | v.MAP_FIXED) == errno.ENOMEM
    mm.munmap(hat(1), H)
    mm.mmap(hat(4), H, RW, HUGE_ANON | v.MAP_FIXED)


def test_map_hugetlb_on_a_plain_file_is_einval(mm, memfd):
    f = memfd("plain", 4 * P)
    flags = v.MAP_SHARED | v.MAP_FIXED | v.MAP_HUGETLB
    assert errno_of(mm.mmap, at(0), P, RW, flags, f) == errno.EINVAL


def test_shm_hugetlb_reserves_at_shmget(pool):
    mm = pool(2)
    assert errno_of(mm.shmget, IPC_PRIVATE, 3 * H, IPC_CREAT | SHM_HUGETLB | 0o600) \
        == errno.ENOMEM
    shmid = mm.shmget(IPC_PRIVATE, H + P, IPC_CREAT | SHM_HUGETLB | 0o600)
    mm.shmat(shmid, hat(0))
    assert layout(mm) == [(0, 2 * HP, "rw-s")]
    assert names(mm) == ["/SYSV00000000 (deleted)"]
    assert flags_of(mm) == [SHARED_FLAGS]
    assert errno_of(mm.mmap, hat(4), H, RW, HUGE_ANON | v.MAP_FIXED) == errno.ENOMEM
    mm.shmctl_rmid(shmid)
    mm.shmdt(hat(0))
    mm.mmap(hat(4), H, RW, HUGE_ANON | v.MAP_FIXED)


def test_userfaultfd_on_hugetlb(pool):
    """userfaultfd_register(): huge-page aligned start and end, the basic ioctls."""
    from vmamodel.userfaultfd import UFFD_API_RANGE_IOCTLS_BASIC

    mm = pool(2)
    mm.mmap(hat(0), 2 * H, RW, HUGE_ANON | v.MAP_FIXED)
    uffd = mm.userfaultfd()
    assert errno_of(mm.uffdio_register, uffd, hat(0) + P, H, 1) == errno.EINVAL
    assert errno_of(mm.uffdio_register, uffd, hat(0), H + P, 1) == errno.EINVAL
    assert mm.uffdio_register(uffd, hat(0), H, 1) == UFFD_API_RANGE_IOCTLS_BASIC & ~(
        1 << 6 | 1 << 7
    )
    assert flags_of(mm) == ["rd wr mr mw me um de ht", PRIVATE_FLAGS]


def test_mremap_of_hugetlb(pool):
    """align_hugetlb(). MAP_NORESERVE: on this host (6.18.44) moving part of a private
    mapping that holds a reservation leaves one page reserved for good (HugePages_Rsvd)."""
    mm = pool(4)
    mm.mmap(hat(0), 2 * H, RW, HUGE_ANON | v.MAP_FIXED | v.MAP_NORESERVE)
    assert errno_of(mm.mremap, hat(0), 2 * H, 3 * H) == errno.EINVAL  # no growing
    assert errno_of(mm.mremap, hat(0), H, H, v.MREMAP_MAYMOVE | v.MREMAP_FIXED,
                    hat(4) + P) == errno.EINVAL
    mm.mremap(hat(0), H, H, v.MREMAP_MAYMOVE | v.MREMAP_FIXED, hat(4))
    assert layout(mm) == [(HP, 2 * HP, "rw-p"), (4 * HP, 5 * HP, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me de nr ht"] * 2
    mm.mremap(hat(1), H, P)  # shrinking rounds up to the huge page size: nothing changes
    assert layout(mm) == [(HP, 2 * HP, "rw-p"), (4 * HP, 5 * HP, "rw-p")]


def test_mbind_and_madvise_on_hugetlb(pool):
    from vmamodel.mempolicy import MPOL_BIND

    mm = pool(2)
    mm.mmap(hat(0), 2 * H, RW, HUGE_ANON | v.MAP_FIXED)
    assert errno_of(mm.mbind, hat(0), P, MPOL_BIND, 1, 64) == errno.EINVAL
    mm.mbind(hat(0), H, MPOL_BIND, 1, 64)
    assert layout(mm) == [(0, HP, "rw-p"), (HP, 2 * HP, "rw-p")]
    assert errno_of(mm.madvise, hat(0) + P, H, v.MADV_DONTNEED) == errno.EINVAL
    mm.madvise(hat(0), H + P, v.MADV_DONTNEED)
    assert errno_of(mm.madvise, hat(0), H, v.MADV_FREE) == errno.EINVAL
    mm.madvise(hat(0), P, v.MADV_MERGEABLE)  # ignored on hugetlb: no split
    assert len(layout(mm)) == 2
