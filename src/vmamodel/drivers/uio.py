"""uio core (drivers/uio/uio.c): uio_mmap stays a legacy ``f_op->mmap`` (v4 19/21).

The offset selects map N (vm_pgoff = N); a driver may supply its own hook: before the
series ``info->mmap(info, vma)``, after it ``info->mmap_prepare(info, desc)`` run through
the compat sequence (compat_set_desc_from_vma, the hook, __compat_vma_mmap) while
uio_mmap holds info_lock. Without a hook the map's memtype decides: PHYS/IOVA remap the
pages, LOGICAL/VIRTUAL fault them in, DMA_COHERENT remaps the coherent buffer.
"""

from __future__ import annotations

import enum
import errno as E
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vmamodel.compat import call_prepare_hook, compat_set_desc_from_vma, compat_vma_mmap_tail
from vmamodel.constants import O_RDWR, PAGE_MASK, PAGE_SHIFT, VM, pfn_up
from vmamodel.drivers.common import char_device, fail, state_of
from vmamodel.file import File, FileOperations, VmOperations
from vmamodel.mmap_action import mm_of, remap_pfn_range
from vmamodel.vma import pgprot_noncached

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc

MAX_UIO_MAPS = 5


class UioMemType(enum.Enum):
    """UIO_MEM_* (include/linux/uio_driver.h)."""

    NONE = 0
    PHYS = 1
    LOGICAL = 2
    VIRTUAL = 3
    IOVA = 4
    DMA_COHERENT = 5


@dataclass(slots=True)
class UioMem:
    """struct uio_mem: ``addr`` is physical for PHYS/IOVA, the DMA address for
    DMA_COHERENT, a kernel virtual address otherwise."""

    addr: int = 0
    size: int = 0
    memtype: UioMemType = UioMemType.NONE


LegacyHook = Callable[["UioInfo", "Vma"], None]
PrepareHook = Callable[["UioInfo", "VmAreaDesc"], None]


@dataclass(eq=False, slots=True)
class UioInfo:
    """struct uio_info: the maps and the driver's optional mmap hook (old or new kind)."""

    name: str
    mem: list[UioMem] = field(default_factory=list)
    mmap: LegacyHook | None = None
    mmap_prepare: PrepareHook | None = None
    priv: object = None


@dataclass(eq=False, slots=True)
class UioDevice:
    """struct uio_device: ``info`` is None once the driver unregistered."""

    minor: int
    info: UioInfo | None
    #: a statistic, not state (compare=False)
    info_lock_holds: int = field(default=0, compare=False)


@dataclass(slots=True)
class UioListener:
    """file->private_data of /dev/uioN."""

    dev: UioDevice


class UioPhysicalVmOps(VmOperations):
    """uio_physical_vm_ops: only .access (generic_access_phys)."""


class UioLogicalVmOps(VmOperations):
    """uio_logical_vm_ops: .fault inserts the backing page on demand."""


UIO_PHYSICAL_VM_OPS = UioPhysicalVmOps()
UIO_LOGICAL_VM_OPS = UioLogicalVmOps()


def uio_find_mem_index(info: UioInfo, vma: Vma) -> int:
    """uio_find_mem_index(): vm_pgoff names the map; it must exist and be non-empty."""
    index = vma.vm_pgoff
    if index < MAX_UIO_MAPS and index < len(info.mem) and info.mem[index].size:
        return index
    return -1


def _span_pages(mem: UioMem) -> int:
    return pfn_up((mem.addr & ~PAGE_MASK) + mem.size)


def uio_mmap_physical(info: UioInfo, vma: Vma, index: int) -> None:
    """uio_mmap_physical(): remap the map's pages, ignoring vm_pgoff (PHYS: non-cached)."""
    mem = info.mem[index]
    length = vma.vm_end - vma.vm_start
    if mem.addr & ~PAGE_MASK:
        raise fail(E.ENODEV, "uio: map not page aligned")
    if length > mem.size:
        raise fail(E.EINVAL, "uio: mapping longer than the map")
    vma.vm_ops = UIO_PHYSICAL_VM_OPS
    if mem.memtype is UioMemType.PHYS:
        vma.vm_page_prot = pgprot_noncached(vma.vm_page_prot)
    remap_pfn_range(vma, vma.vm_start, mem.addr >> PAGE_SHIFT, length, vma.vm_page_prot)


def uio_mmap_logical(vma: Vma) -> None:
    """uio_mmap_logical(): nothing mapped now; pages appear on fault."""
    vma.vm_flags |= VM.DONTEXPAND | VM.DONTDUMP
    vma.vm_ops = UIO_LOGICAL_VM_OPS


def uio_mmap_dma_coherent(info: UioInfo, vma: Vma, index: int) -> None:
    """uio_mmap_dma_coherent(): dma_mmap_coherent with vm_pgoff temporarily 0."""
    mem = info.mem[index]
    length = vma.vm_end - vma.vm_start
    if mem.addr & ~PAGE_MASK:
        raise fail(E.ENODEV, "uio: DMA address not page aligned")
    if length > mem.size:
        raise fail(E.EINVAL, "uio: mapping longer than the DMA buffer")
    vma.vm_pgoff = 0
    try:
        remap_pfn_range(vma, vma.vm_start, mem.addr >> PAGE_SHIFT, length, vma.vm_page_prot)
    finally:
        vma.vm_pgoff = index


def uio_mmap_by_type(info: UioInfo, vma: Vma, index: int) -> None:
    """The built-in memtype switch of uio_mmap (no driver hook)."""
    memtype = info.mem[index].memtype
    if memtype in (UioMemType.IOVA, UioMemType.PHYS):
        uio_mmap_physical(info, vma, index)
    elif memtype in (UioMemType.LOGICAL, UioMemType.VIRTUAL):
        uio_mmap_logical(vma)
    elif memtype is UioMemType.DMA_COHERENT:
        uio_mmap_dma_coherent(info, vma, index)
    else:
        raise fail(E.EINVAL, f"uio: memtype {memtype.name}")


def uio_mmap_driver_hook(info: UioInfo, file: File, vma: Vma) -> None:
    """Step 6 of uio_mmap: the driver's hook, old or (v4 19/21) prepare-style via compat."""
    if info.mmap_prepare is not None:
        mm = mm_of(vma)
        desc = compat_set_desc_from_vma(mm, file, vma)
        prepare = info.mmap_prepare
        call_prepare_hook(mm, lambda d: prepare(info, d), info.name, desc, vma)
        compat_vma_mmap_tail(mm, desc, vma)
    elif info.mmap is not None:
        info.mmap(info, vma)


def uio_mmap(file: File, vma: Vma) -> None:
    """uio_mmap() (drivers/uio/uio.c): its checks in the kernel's order (docs/drivers.md 9)."""
    dev = state_of(file, UioListener).dev
    if vma.vm_end < vma.vm_start:
        raise fail(E.EINVAL)
    vma.vm_private_data = dev
    dev.info_lock_holds += 1
    info = dev.info
    if info is None:
        raise fail(E.EINVAL, "uio: device gone")
    index = uio_find_mem_index(info, vma)
    if index < 0:
        raise fail(E.EINVAL, "uio: no such map")
    if vma.pages > _span_pages(info.mem[index]):
        raise fail(E.EINVAL, "uio: more pages than the map spans")
    if info.mmap_prepare is not None or info.mmap is not None:
        uio_mmap_driver_hook(info, file, vma)
        return
    uio_mmap_by_type(info, vma, index)


class UioFops(FileOperations):
    """uio_fops: the legacy ``.mmap`` the series keeps."""

    def mmap(self, file: File, vma: Vma) -> None:
        uio_mmap(file, vma)


def open_device(dev: UioDevice, flags: int = O_RDWR) -> File:
    """open("/dev/uioN"); a gone device fails with ENODEV (uio_open)."""
    if dev.info is None:
        raise fail(E.ENODEV, "uio: device gone")
    return char_device(
        f"/dev/uio{dev.minor}", UioFops(), UioListener(dev), flags=flags,
        dev=(243, dev.minor), ino=2430 + dev.minor, kind="uio",
    )
