"""hugetlb mappings (mm/hugetlb.c, fs/hugetlbfs/inode.c, ipc/shm.c's SHM_HUGETLB): MAP_HUGETLB
and SHM_HUGETLB files, their placement, reservations and the ``ht`` VMAs they make.

* ``mmap(MAP_ANONYMOUS | MAP_HUGETLB)`` (ksys_mmap_pgoff): the size comes from
  ``MAP_HUGE_SHIFT`` bits (0: the default 2 MiB; 21: 2 MiB; 30: 1 GiB; others EINVAL), the
  length is rounded up to it, and the mapping is of a new unlinked hugetlbfs file
  ``/anon_hugepage (deleted)``. MAP_HUGETLB with a file that is not hugetlbfs is EINVAL.
* Placement (hugetlb_get_unmapped_area): a length that is not a multiple of the huge page
  size, or a MAP_FIXED address off a huge page boundary, is EINVAL; searches are aligned to
  the huge page size (get_align_mask).
* hugetlbfs_file_mmap_prepare: VM_HUGETLB | VM_DONTEXPAND (so such VMAs never
  merge), hugetlb_vm_ops, a file offset on a huge page boundary (EINVAL), and the
  reservation of the huge pages (hugetlb_reserve_pages): ENOMEM when the pool has fewer free
  unreserved pages, unless MAP_NORESERVE. A private mapping reserves for each VMA and
  gives back what a closed VMA held; a shared one reserves once per page of the file.
* hugetlb_vm_op_split refuses a split off a huge page boundary (EINVAL for munmap,
  mprotect, madvise... at such an address).

The pool is ``AddressSpace.hugetlb_pool`` (vm.nr_hugepages per size; shared by fork, as
the kernel's hstates are global). Faulting huge pages in is not modelled.
"""

from __future__ import annotations

import errno
import itertools
from typing import TYPE_CHECKING, Any

from vmamodel.constants import (
    MAP_FIXED,
    MAP_HUGE_SHIFT,
    O_RDWR,
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_SIZE,
    VM_DONTEXPAND,
    VM_HUGETLB,
    VM_NORESERVE,
    VM_SHARED,
    VM_WRITE,
)
from vmamodel.file import File, FileOperations, VmOperations
from vmamodel.hooks import oserror
from vmamodel.unmapped_area import mm_get_unmapped_area_vmflags

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma, VmAreaDesc

#: The huge page sizes x86-64 offers (2 MiB, 1 GiB); the default is 2 MiB.
HPAGE_SIZES = (PMD_SIZE, 1 << 30)
DEFAULT_HPAGE_SIZE = PMD_SIZE
MAP_HUGE_MASK = 0x3F
SHM_HUGE_SHIFT = 26
#: The device of the internal hugetlbfs mounts on the host (one per size); maps shows it.
HUGETLBFS_DEV = (0, 17)


class HugetlbPool:
    """The hstates: for each huge page size, vm.nr_hugepages and the pages reserved."""

    def __init__(self, pages: dict[int, int] | None = None) -> None:
        self.total = {size: 0 for size in HPAGE_SIZES}
        self.total.update(pages or {})
        self.resv = dict.fromkeys(self.total, 0)
        self._inos = itertools.count(100000)

    def hstate_sizelog(self, log: int) -> int | None:
        """hstate_sizelog(): the size for a MAP_HUGE_* / SHM_HUGE_* log (0: the default)."""
        size = DEFAULT_HPAGE_SIZE if log == 0 else 1 << log
        return size if size in self.total else None

    def reserve(self, size: int, pages: int) -> None:
        """hugetlb_acct_memory(): ENOMEM when fewer free unreserved pages are left."""
        if pages > self.total[size] - self.resv[size]:
            raise oserror(errno.ENOMEM, f"hugetlb: {pages} pages of {size >> 10} KiB not free")
        self.resv[size] += pages

    def unreserve(self, size: int, pages: int) -> None:
        self.resv[size] -= pages


def vma_hpagesize(vma: Vma) -> int:
    """vma_kernel_pagesize(): the huge page size of a hugetlb VMA's file, else PAGE_SIZE."""
    if not vma.vm_flags & VM_HUGETLB or vma.vm_file is None:
        return PAGE_SIZE
    size: int = vma.vm_file.extra.get("hpage_size", DEFAULT_HPAGE_SIZE)
    return size


class HugetlbReservation:
    """The reservation a private hugetlb VMA owns (HPAGE_RESV_OWNER): pages by index."""

    __slots__ = ("pages", "pool", "size")

    def __init__(self, pool: HugetlbPool, size: int, pages: set[int]) -> None:
        self.pool = pool
        self.size = size
        self.pages = pages


class HugetlbVmOperations(VmOperations):
    """hugetlb_vm_ops: ``may_split`` refuses an address off a huge page boundary
    (hugetlb_vm_op_split); ``open``/``close`` share and return a private mapping's
    reservation (hugetlb_vm_op_open / hugetlb_vm_op_close)."""

    def may_split(self, vma: Vma, addr: int) -> None:
        if addr & (vma_hpagesize(vma) - 1):
            raise oserror(errno.EINVAL, "hugetlb: split off a huge page boundary")

    def open(self, vma: Vma) -> None:
        return None

    def close(self, vma: Vma) -> None:
        """hugetlb_vm_op_close(): the owner gives back the reserved pages in its range;
        a shared file's reservation goes when its last VMA does."""
        resv = vma.vm_private_data
        if isinstance(resv, HugetlbReservation):
            first = vma.vm_pgoff * PAGE_SIZE // resv.size
            here = set(range(first, first + (vma.vm_end - vma.vm_start) // resv.size))
            gone = resv.pages & here
            resv.pages -= gone
            resv.pool.unreserve(resv.size, len(gone))
            return
        file = vma.vm_file
        if file is None:
            return
        file.extra["users"] -= 1
        if file.extra["users"] == 0 and file.extra.get("anon"):
            hugetlbfs_evict(file)


HUGETLB_VM_OPS = HugetlbVmOperations()


def hugetlbfs_evict(file: File) -> None:
    """hugetlbfs_evict_inode(): an unlinked file's reserved pages go back to the pool."""
    pool: HugetlbPool = file.extra["pool"]
    resv: set[int] = file.extra["resv"]
    pool.unreserve(file.extra["hpage_size"], len(resv))
    resv.clear()


class HugetlbfsFileOperations(FileOperations):
    """hugetlbfs_file_operations: hugetlbfs_file_mmap_prepare (so a new hugetlb mapping
    is known to be KSM-incompatible before the merge attempt) and
    hugetlb_get_unmapped_area."""

    def __init__(self) -> None:
        self.mmap_prepare = hugetlbfs_file_mmap_prepare
        self.get_unmapped_area = hugetlb_get_unmapped_area


def hugetlb_get_unmapped_area(
    mm: AddressSpace, file: File | None, addr: int, length: int, pgoff: int, flags: int
) -> int:
    """hugetlb_get_unmapped_area(): EINVAL for a length or a MAP_FIXED address off the huge
    page size; a hint is rounded up to it; the search is huge-page aligned."""
    assert file is not None
    size: int = file.extra["hpage_size"]
    if length & (size - 1):
        raise oserror(errno.EINVAL, "hugetlb: length not a multiple of the huge page size")
    if flags & MAP_FIXED and addr & (size - 1):
        raise oserror(errno.EINVAL, "hugetlb: MAP_FIXED address off a huge page boundary")
    hint = (addr + size - 1) & ~(size - 1) if addr else 0
    return mm_get_unmapped_area_vmflags(mm, file, hint, length, pgoff, flags, 0)


def hugetlbfs_file_mmap_prepare(desc: VmAreaDesc) -> None:
    """hugetlbfs_file_mmap_prepare(): flags and ops first, then the offset check (EINVAL)
    and the reservation (ENOMEM); a private mapping's reservation rides in private_data."""
    file = desc.file
    desc.vm_flags |= VM_HUGETLB | VM_DONTEXPAND
    desc.vm_ops = HUGETLB_VM_OPS
    size: int = file.extra["hpage_size"]
    if desc.pgoff & ((size >> PAGE_SHIFT) - 1):
        raise oserror(errno.EINVAL, "hugetlb: file offset off a huge page boundary")
    length = desc.end - desc.start + (desc.pgoff << PAGE_SHIFT)
    first = (desc.pgoff << PAGE_SHIFT) // size
    pages = set(range(first, length // size))
    noreserve = bool(desc.vm_flags & VM_NORESERVE) or file.extra.get("shm", False)
    pool: HugetlbPool = file.extra["pool"]
    if not noreserve:
        if desc.vm_flags & VM_SHARED:
            resv: set[int] = file.extra["resv"]
            new = pages - resv
            pool.reserve(size, len(new))
            resv |= new
        else:
            pool.reserve(size, len(pages))
            desc.private_data = HugetlbReservation(pool, size, pages)
    if not isinstance(desc.private_data, HugetlbReservation):
        file.extra["users"] = file.extra.get("users", 0) + 1
    if desc.vm_flags & VM_WRITE and file.size < length:
        file.size = length


def hugetlb_file_setup(
    mm: AddressSpace, name: str, size: int, hpage_size: int, noreserve: bool, shm: bool
) -> File:
    """hugetlb_file_setup(): an unlinked hugetlbfs file of ``size`` bytes, its pages
    reserved now unless ``noreserve`` (MAP_HUGETLB passes VM_NORESERVE: the mmap reserves)."""
    pool = mm.hugetlb_pool
    pages = size // hpage_size
    resv: set[int] = set()
    if not noreserve:
        pool.reserve(hpage_size, pages)
        resv = set(range(pages))
    extra: dict[str, Any] = {
        "hpage_size": hpage_size, "pool": pool, "resv": resv, "shm": shm, "anon": True,
        "users": 0,
    }
    return File(path=name, size=size, flags=O_RDWR, f_op=HugetlbfsFileOperations(),
                dev=HUGETLBFS_DEV, ino=next(pool._inos), deleted=True, kind="hugetlb",
                extra=extra)


def map_hugetlb_file(mm: AddressSpace, length: int, flags: int) -> tuple[File, int]:
    """The MAP_HUGETLB branch of ksys_mmap_pgoff(): the size from the flags (EINVAL when no
    such hstate), the length rounded up to it, a new ``/anon_hugepage`` file."""
    size = mm.hugetlb_pool.hstate_sizelog((flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK)
    if size is None:
        raise oserror(errno.EINVAL, "mmap: no such huge page size")
    length = (length + size - 1) & ~(size - 1) & ((1 << 64) - 1)
    file = hugetlb_file_setup(mm, "/anon_hugepage", length, size, noreserve=True, shm=False)
    return file, length


def hugetlb_shm_file(mm: AddressSpace, name: str, size: int, shmflg: int) -> File:
    """newseg() with SHM_HUGETLB: the size from SHM_HUGE_* bits, rounded up to it, pages
    reserved at shmget (ENOMEM) unless SHM_NORESERVE."""
    hsize = mm.hugetlb_pool.hstate_sizelog((shmflg >> SHM_HUGE_SHIFT) & MAP_HUGE_MASK)
    if hsize is None:
        raise oserror(errno.EINVAL, "shmget: no such huge page size")
    aligned = (size + hsize - 1) & ~(hsize - 1)
    file = hugetlb_shm_file_setup(mm, name, aligned, hsize, bool(shmflg & 0o10000))
    return file


def hugetlb_shm_file_setup(
    mm: AddressSpace, name: str, size: int, hsize: int, noreserve: bool
) -> File:
    file = hugetlb_file_setup(mm, name, size, hsize, noreserve=noreserve, shm=True)
    file.extra["anon"] = False  # the segment, not its last VMA, owns the reservation
    return file
