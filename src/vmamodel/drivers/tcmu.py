"""TCMU - target_core_user (drivers/target/target_core_user.c), the uio_info hook user.

The whole mailbox + command ring + data area is mapped at once, from map 0 of /dev/uioN.
The device's kref is the resource: the device holds one itself; every VMA object holds one.

Old tcmu_mmap(info, vma): flags, ops, private = udev, then the size check (EINVAL), then
tcmu_vma_open -> kref_get.
New (v4 19/21) tcmu_mmap_prepare(info, desc): flags, ops, private = udev, size check; the
kref_get moves to ``mapped``, which runs inside uio_mmap's compat call, before the VMA is in
the tree. Under v4, vfs_mmap then sees ``mapped`` on the VMA left by the legacy uio_mmap
and fails the mmap with EINVAL (__vma_check_mmap_hook(), v4 08/21, removed by commit
3d3544a6c996; docs/drivers.md section 10) after ``mapped`` took its reference, and the VMA is
freed without ``close``: one leaked kref per attempt.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vmamodel.constants import PAGE_SHIFT, VM
from vmamodel.drivers.common import check_form, fail, require_mapped
from vmamodel.drivers.ledger import Ledger
from vmamodel.drivers.uio import UioDevice, UioInfo, UioMem, UioMemType
from vmamodel.file import File, Ref, VmOperations

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc

KREF = "kref"
TCMU_FLAGS = VM.DONTEXPAND | VM.DONTDUMP


@dataclass(eq=False, slots=True)
class TcmuDevice:
    """struct tcmu_dev: ``mmap_pages`` covers mailbox, command ring and data area.

    ``kref()`` is the device's own reference plus the ledger's net count; a put that drops
    it to 0 frees the device (tcmu_dev_kref_release), flagged as such in the ledger.
    """

    name: str = "tcmu0"
    mmap_pages: int = 16
    ledger: Ledger = field(default_factory=lambda: Ledger("tcmu"))

    def kref(self) -> int:
        return 1 + self.ledger.count(KREF)

    def get(self, cause: str, vma_id: int | None) -> None:
        if self.kref() <= 0:
            self.ledger.flag("kref_get on a freed tcmu device", cause, vma_id)
        self.ledger.acquire(KREF, cause, vma_id)

    def put(self, cause: str, vma_id: int | None) -> None:
        self.ledger.release(KREF, cause, vma_id)
        if self.kref() == 0:
            self.ledger.flag("last kref_put: tcmu device freed", cause, vma_id)


def _udev_of(vma: Vma) -> TcmuDevice:
    udev = vma.vm_private_data
    if not isinstance(udev, TcmuDevice):
        raise TypeError(f"{vma!r}: vm_private_data is not the tcmu device")
    return udev


class TcmuVmOps(VmOperations):
    """tcmu_vm_ops before the series: open kref_get, close kref_put (fault not modelled)."""

    def open(self, vma: Vma) -> None:
        _udev_of(vma).get("open", vma.id)

    def close(self, vma: Vma) -> None:
        _udev_of(vma).put("close", vma.id)


class TcmuMappedVmOps(TcmuVmOps):
    """v4 tcmu_vm_ops: ``mapped`` = tcmu_vma_mapped reads the udev from the private pointer
    (written into the VMA by the compat write-back) and takes a reference."""

    def mapped(
        self, start: int, end: int, pgoff: int, file: File | None, private: Ref[Any]
    ) -> None:
        del start, end, pgoff, file
        udev = private.value
        if not isinstance(udev, TcmuDevice):
            raise TypeError("tcmu_vma_mapped: private data is not the tcmu device")
        udev.get("mapped", None)


TCMU_VM_OPS = TcmuMappedVmOps()
TCMU_LEGACY_VM_OPS = TcmuVmOps()


def tcmu_mmap_prepare(info: UioInfo, desc: VmAreaDesc) -> None:
    """tcmu_mmap_prepare() (v4 19/21): everything set before the size check."""
    require_mapped(desc.mm, "tcmu")
    udev = _tcmu_of(info)
    desc.vm_flags |= TCMU_FLAGS
    desc.vm_ops = TCMU_VM_OPS
    desc.private_data = udev
    if desc.pages != udev.mmap_pages:
        raise fail(E.EINVAL, f"tcmu: {desc.pages} pages != {udev.mmap_pages}")


def tcmu_mmap(info: UioInfo, vma: Vma) -> None:
    """tcmu_mmap() before the series: the reference is taken by calling tcmu_vma_open."""
    udev = _tcmu_of(info)
    vma.vm_flags |= TCMU_FLAGS
    vma.vm_ops = TCMU_LEGACY_VM_OPS
    vma.vm_private_data = udev
    if vma.pages != udev.mmap_pages:
        raise fail(E.EINVAL, f"tcmu: {vma.pages} pages != {udev.mmap_pages}")
    udev.get("mmap", vma.id)


def _tcmu_of(info: UioInfo) -> TcmuDevice:
    if not isinstance(info.priv, TcmuDevice):
        raise TypeError(f"uio_info {info.name} is not a tcmu device")
    return info.priv


def tcmu_uio_device(udev: TcmuDevice, minor: int = 0, *, form: str = "new") -> UioDevice:
    """The uio device TCMU registers: map 0 is the vmalloc'ed area (UIO_MEM_NONE: only the
    driver hook can map it)."""
    check_form(form)
    info = UioInfo(
        name=udev.name,
        mem=[UioMem(addr=0, size=udev.mmap_pages << PAGE_SHIFT, memtype=UioMemType.NONE)],
        priv=udev,
    )
    if form == "new":
        info.mmap_prepare = tcmu_mmap_prepare
    else:
        info.mmap = tcmu_mmap
    return UioDevice(minor, info)
