"""System V shared memory as the VMA layer sees it (ipc/shm.c): shmget, shmat, shmdt and
shmctl(IPC_RMID).

A segment is a shmem file named ``SYSV%08x`` (its key) that is unlinked from the start, so
maps shows ``/SYSV0000002a (deleted)``. Each shmat maps a new struct file cloned from it
(two attaches never merge) through shm_mmap, a legacy ``.mmap`` that gives the VMA
shm_vm_ops: their ``open``/``close`` count the attaches (a merge never removes such a VMA),
and the segment goes when IPC_RMID was asked and the last attach is gone.

The segments live in :class:`IpcNamespace` (``AddressSpace.ipc_ns``), which fork shares.
Permissions are not modelled (the caller is taken to own every segment, as root does).
"""

from __future__ import annotations

import errno
import itertools
from typing import TYPE_CHECKING, cast

from vmamodel.compat import vfs_mmap
from vmamodel.constants import (
    MAP_FIXED,
    MAP_SHARED,
    O_RDONLY,
    O_RDWR,
    PAGE_MASK,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    ULONG_MAX,
    page_align,
)
from vmamodel.file import SHMEM_DEV, File, FileOperations, ShmemFileOperations, VmOperations
from vmamodel.hooks import oserror
from vmamodel.hugetlb import hugetlb_shm_file, hugetlbfs_evict
from vmamodel.mmap import do_mmap
from vmamodel.munmap import do_munmap

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma

IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_EXCL = 0o2000
IPC_RMID = 0
SHM_RDONLY = 0o10000
SHM_RND = 0o20000
SHM_REMAP = 0o40000
SHM_EXEC = 0o100000
SHM_HUGETLB = 0o4000
SHM_NORESERVE = 0o10000
SHMMIN = 1
#: SHMMAX / SHMALL defaults (include/uapi/linux/shm.h): effectively unlimited.
SHMMAX = ULONG_MAX - (1 << 24)
#: SHMLBA on x86: attach addresses need only page alignment.
SHMLBA = PAGE_SIZE


class ShmSegment:
    """struct shmid_kernel: the segment's key, size, base file and attach count."""

    __slots__ = ("destroyed", "file", "id", "key", "nattch", "ns", "rmid", "size")

    def __init__(self, ns: IpcNamespace, ident: int, key: int, size: int, file: File) -> None:
        self.ns = ns
        self.id = ident
        self.key = key
        self.size = size
        self.file = file
        self.nattch = 0
        self.rmid = False
        self.destroyed = False

    def __repr__(self) -> str:
        return f"ShmSegment(id={self.id}, key={self.key:#x}, size={self.size})"


class IpcNamespace:
    """struct ipc_namespace, the shm part: segments by id and by key."""

    def __init__(self) -> None:
        self.segments: dict[int, ShmSegment] = {}
        self._ids = itertools.count(0)
        self._inos = itertools.count(32768)

    def find_key(self, key: int) -> ShmSegment | None:
        for seg in self.segments.values():
            if seg.key == key and key != IPC_PRIVATE and not seg.rmid:
                return seg
        return None

    def destroy(self, seg: ShmSegment) -> None:
        """shm_destroy(): the segment and its id go away (a hugetlb segment's reserved
        pages with it)."""
        seg.destroyed = True
        self.segments.pop(seg.id, None)
        if seg.file.kind == "hugetlb":
            hugetlbfs_evict(seg.file)


class ShmVmOperations(VmOperations):
    """shm_vm_ops: ``open`` counts an attach (split piece, fork copy, mremap copy), ``close``
    uncounts it and destroys a removed segment with no attach left; ``may_split`` is the
    backing file's (a hugetlb segment refuses splits off a huge page boundary)."""

    def __init__(self, seg: ShmSegment, inner: VmOperations | None) -> None:
        self.seg = seg
        self.inner = inner
        if inner is not None and inner.may_split is not None:
            self.may_split = inner.may_split

    def open(self, vma: Vma) -> None:
        """shm_open(): one more attach; the backing file's open too."""
        self.seg.nattch += 1
        if self.inner is not None and self.inner.open is not None:
            self.inner.open(vma)

    def close(self, vma: Vma) -> None:
        """shm_close(): the backing file's close, then the last close of a removed segment
        destroys it."""
        seg = self.seg
        if self.inner is not None and self.inner.close is not None:
            self.inner.close(vma)
        seg.nattch -= 1
        if seg.nattch == 0 and seg.rmid:
            seg.ns.destroy(seg)


class ShmFileOperations(FileOperations):
    """shm_file_operations: shm_mmap (legacy), placement by the shmem file's own
    get_unmapped_area (shm_get_unmapped_area)."""

    def __init__(self, seg: ShmSegment) -> None:
        self.seg = seg
        base_op = seg.file.f_op
        self.get_unmapped_area = None if base_op is None else base_op.get_unmapped_area
        self.mmap = self._shm_mmap

    def _shm_mmap(self, file: File, vma: Vma) -> None:
        """shm_mmap(): __shm_open (EIDRM for a destroyed segment), the backing file's mmap,
        then shm_vm_ops wrapping its vm_ops."""
        seg = self.seg
        if seg.destroyed:
            raise oserror(errno.EIDRM, "shm_mmap: the segment was removed")
        assert vma.vm_mm is not None
        vma.vm_file = seg.file
        vfs_mmap(cast("AddressSpace", vma.vm_mm), seg.file, vma)
        vma.vm_file = file
        seg.nattch += 1
        vma.vm_ops = ShmVmOperations(seg, vma.vm_ops)


def ksys_shmget(mm: AddressSpace, key: int, size: int, shmflg: int) -> int:
    """ksys_shmget() / newseg(): the id of the segment with ``key``, created when it is
    IPC_PRIVATE or IPC_CREAT asks for it. EINVAL: a size below SHMMIN or above SHMMAX (new
    segment) or above the existing one's; EEXIST: IPC_CREAT|IPC_EXCL on an existing key;
    ENOENT: no such key without IPC_CREAT."""
    ns = mm.ipc_ns
    key &= 0xFFFFFFFF
    size &= ULONG_MAX
    if key != IPC_PRIVATE:
        seg = ns.find_key(key)
        if seg is not None:
            if shmflg & IPC_CREAT and shmflg & IPC_EXCL:
                raise oserror(errno.EEXIST, f"shmget: key {key:#x} exists")
            if size > seg.size:
                raise oserror(errno.EINVAL, "shmget: larger than the existing segment")
            return seg.id
        if not shmflg & IPC_CREAT:
            raise oserror(errno.ENOENT, f"shmget: no segment with key {key:#x}")
    if size < SHMMIN or size > SHMMAX:
        raise oserror(errno.EINVAL, f"shmget: size {size}")
    name = f"/SYSV{key:08x}"
    if shmflg & SHM_HUGETLB:
        file = hugetlb_shm_file(mm, name, size, shmflg)
    else:
        file = File(path=name, size=size, flags=O_RDWR, f_op=ShmemFileOperations(), dev=SHMEM_DEV,
                    ino=next(ns._inos), deleted=True, shmem=True, kind="sysv")
    seg = ShmSegment(ns, next(ns._ids), key, size, file)
    file.extra["shm"] = seg
    ns.segments[seg.id] = seg
    return seg.id


def do_shmat(mm: AddressSpace, shmid: int, addr: int, shmflg: int) -> int:
    """do_shmat(): check the address (page aligned, or rounded down with SHM_RND; SHM_REMAP
    needs one), the id (EINVAL), and without SHM_REMAP that nothing is mapped in the way
    (EINVAL); then do_mmap of a clone of the segment's file, MAP_SHARED (and MAP_FIXED with
    an address), read-only with SHM_RDONLY. Returns the address."""
    shmid = shmid & 0xFFFFFFFF
    addr &= ULONG_MAX
    flags = MAP_SHARED
    if shmid & 0x80000000:
        raise oserror(errno.EINVAL, "shmat: negative id")
    if addr:
        if addr & (SHMLBA - 1):
            if not shmflg & SHM_RND:
                raise oserror(errno.EINVAL, "shmat: unaligned address")
            addr &= ~(SHMLBA - 1)
            if not addr and shmflg & SHM_REMAP:
                raise oserror(errno.EINVAL, "shmat: SHM_REMAP at address 0")
        flags |= MAP_FIXED
    elif shmflg & SHM_REMAP:
        raise oserror(errno.EINVAL, "shmat: SHM_REMAP without an address")
    if shmflg & SHM_RDONLY:
        prot, f_flags = PROT_READ, O_RDONLY
    else:
        prot, f_flags = PROT_READ | PROT_WRITE, O_RDWR
    if shmflg & SHM_EXEC:
        prot |= PROT_EXEC
    seg = mm.ipc_ns.segments.get(shmid)
    if seg is None:
        raise oserror(errno.EINVAL, f"shmat: no segment {shmid}")
    base = seg.file
    size = base.size  # i_size of the segment's file: rounded up for hugetlb segments
    clone = File(path=base.path, size=base.size, flags=f_flags, f_op=ShmFileOperations(seg),
                 dev=base.dev, ino=base.ino, deleted=True, shmem=base.shmem, kind=base.kind,
                 extra=dict(base.extra))
    if addr and not shmflg & SHM_REMAP:
        if addr + size > ULONG_MAX:
            raise oserror(errno.EINVAL, "shmat: range wraps")
        if mm.tree.find_intersection(addr, addr + page_align(size)):
            raise oserror(errno.EINVAL, "shmat: something is mapped there")
    result, _ = do_mmap(mm, addr, size, prot, flags, clone, 0)
    return result


def ksys_shmdt(mm: AddressSpace, addr: int) -> None:
    """ksys_shmdt(): unmap the shm VMA that starts at ``addr`` with pgoff 0 relative to it,
    then every later fragment of the same attach (same file, pgoff matching its distance
    from ``addr``) within the segment's size. EINVAL: unaligned, or no such VMA."""
    addr &= ULONG_MAX
    if addr & ~PAGE_MASK:
        raise oserror(errno.EINVAL, "shmdt: unaligned address")
    vma = mm.tree.find(addr)
    file: File | None = None
    size = 0
    while vma is not None:
        if _is_fragment(vma, addr):
            file = vma.vm_file
            assert file is not None
            size = file.size
            end = vma.vm_end
            do_munmap(mm, vma.vm_start, vma.vm_end - vma.vm_start)
            vma = mm.tree.find(end)
            break
        vma = mm.tree.find(vma.vm_end)
    if file is None:
        raise oserror(errno.EINVAL, f"shmdt: no attach at {addr:#x}")
    size = page_align(size)
    while vma is not None and vma.vm_end - addr <= size:
        end = vma.vm_end
        if _is_fragment(vma, addr) and vma.vm_file is file:
            do_munmap(mm, vma.vm_start, vma.vm_end - vma.vm_start)
        vma = mm.tree.find(end)


def _is_fragment(vma: Vma, addr: int) -> bool:
    """vm_ops == &shm_vm_ops and (vm_start - addr) / PAGE_SIZE == vm_pgoff (unsigned)."""
    return (
        isinstance(vma.vm_ops, ShmVmOperations)
        and ((vma.vm_start - addr) & ULONG_MAX) // PAGE_SIZE == vma.vm_pgoff
    )


def ksys_shmctl_rmid(mm: AddressSpace, shmid: int) -> None:
    """shmctl(IPC_RMID): the key is freed at once; the segment goes with its last attach
    (EINVAL: no such id)."""
    seg = mm.ipc_ns.segments.get(shmid & 0xFFFFFFFF)
    if seg is None:
        raise oserror(errno.EINVAL, f"shmctl: no segment {shmid}")
    seg.rmid = True
    if seg.nattch == 0:
        mm.ipc_ns.destroy(seg)
