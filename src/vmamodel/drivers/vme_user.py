"""vme_user (drivers/staging/vme_user/{vme.c,vme_user.c}), v4 16/21.

Only master minors can be mapped; the mapping is the master window at vm_pgoff pages.
Per original mapping the driver allocates a private struct ``{minor, refcnt}`` shared by
every split piece and fork copy (``open`` bumps refcnt, ``close`` drops it and, on the last
one, decrements the image's ``mmap_count`` and frees the struct).

Old: everything inside vme_user_mmap, under the image mutex.
New: prepare checks and asks for a simple I/O remap; ``mapped`` allocates the struct and
bumps mmap_count (ENOMEM now makes the core unmap the VMA).
Inferred bug (docs/drivers.md section 7): close dereferences vm_private_data without a
check, so a failed ``mapped`` or a failed remap leaves close with None: flagged in the ledger.
Kept quirk (both forms; vme_master_mmap() and the vm_iomap_memory() arithmetic): the window
offset is applied by the driver and again by the ioremap helper, so only offset 0 works on
a page-aligned window.
"""

from __future__ import annotations

import errno as E
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vmamodel.constants import O_RDWR, PAGE_SHIFT
from vmamodel.drivers.common import char_device, check_form, fail, require_mapped, state_of
from vmamodel.drivers.ledger import Ledger
from vmamodel.file import File, FileOperations, Ref, VmOperations
from vmamodel.mmap_action import mmap_action_simple_ioremap, vm_iomap_memory
from vmamodel.vma import pgprot_noncached

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc

MASTER_MINOR = "master"
SLAVE_MINOR = "slave"
CONTROL_MINOR = "control"

PRIV = "vme_user_vma_priv"


@dataclass(slots=True)
class VmeResource:
    """A VME resource: ``is_master`` and, for a master, its bus window."""

    is_master: bool = True
    window_start: int = 0x1000_0000
    window_size: int = 0x10000


@dataclass(slots=True)
class VmeImage:
    """image[minor]: the resource and how many mappings use it (mmap_count)."""

    kind: str
    resource: VmeResource
    mmap_count: int = 0
    #: how often the mutex was taken: a statistic, not state (compare=False)
    mutex_holds: int = field(default=0, compare=False)


@dataclass(eq=False, slots=True)
class VmeUserVmaPriv:
    """struct vme_user_vma_priv: shared by every piece of one original mapping."""

    minor: int
    refcnt: int
    ident: int


@dataclass(slots=True)
class VmeUserBridge:
    """The vme_user driver's images; ``fail_alloc`` makes the next kmalloc fail (ENOMEM)."""

    images: dict[int, VmeImage] = field(default_factory=dict)
    fail_alloc: bool = False
    ledger: Ledger = field(default_factory=lambda: Ledger("vme_user"))
    _ids: itertools.count[int] = field(default_factory=itertools.count, compare=False)

    def image(self, minor: int) -> VmeImage:
        try:
            return self.images[minor]
        except KeyError:
            raise fail(E.ENODEV, f"vme_user: no minor {minor}") from None

    def alloc_priv(self, minor: int, cause: str, vma_id: int | None) -> VmeUserVmaPriv:
        if self.fail_alloc:
            raise fail(E.ENOMEM, "vme_user: kmalloc")
        self.ledger.acquire(PRIV, cause, vma_id)
        return VmeUserVmaPriv(minor, 1, next(self._ids))


@dataclass(slots=True)
class VmeUserFile:
    """An open /dev/bus/vme/*: the minor comes from the inode (iminor)."""

    bridge: VmeUserBridge
    minor: int


def _count_name(minor: int) -> str:
    return f"mmap_count[{minor}]"


def vme_master_window(res: VmeResource, pgoff: int, length: int) -> int:
    """vme_master_mmap[_prepare] checks: not a master (EINVAL), past the window (EFAULT)."""
    if not res.is_master:
        raise fail(E.EINVAL, "vme: not a master resource")
    phys = res.window_start + (pgoff << PAGE_SHIFT)
    if phys + length > res.window_start + res.window_size:
        raise fail(E.EFAULT, "vme: map size exceeds the window")
    return phys


def _master_image(vf: VmeUserFile) -> VmeImage:
    image = vf.bridge.image(vf.minor)
    if image.kind != MASTER_MINOR:
        raise fail(E.ENODEV, "vme_user: not a master minor")
    return image


def _priv_of(bridge: VmeUserBridge, vma: Vma, cause: str) -> VmeUserVmaPriv | None:
    priv = vma.vm_private_data
    if isinstance(priv, VmeUserVmaPriv):
        return priv
    bridge.ledger.flag("NULL dereference of vm_private_data", cause, vma.id)
    return None


class VmeUserVmOps(VmOperations):
    """vme_user_vm_ops before the series: open / close on the shared private struct."""

    def open(self, vma: Vma) -> None:
        bridge = state_of(vma.vm_file, VmeUserFile).bridge
        priv = _priv_of(bridge, vma, "open")
        if priv is not None:
            priv.refcnt += 1

    def close(self, vma: Vma) -> None:
        bridge = state_of(vma.vm_file, VmeUserFile).bridge
        priv = _priv_of(bridge, vma, "close")
        if priv is None:
            return
        priv.refcnt -= 1
        if priv.refcnt:
            return
        image = bridge.image(priv.minor)
        image.mutex_holds += 1
        image.mmap_count -= 1
        bridge.ledger.release(_count_name(priv.minor), "close", vma.id)
        bridge.ledger.release(PRIV, "close", vma.id)  # kfree


class VmeUserMappedVmOps(VmeUserVmOps):
    """v4 vme_user_vm_ops: gains ``mapped`` = vme_user_vm_mapped."""

    def mapped(
        self, start: int, end: int, pgoff: int, file: File | None, private: Ref[Any]
    ) -> None:
        del start, end, pgoff
        vf = state_of(file, VmeUserFile)
        image = vf.bridge.image(vf.minor)
        image.mutex_holds += 1
        private.value = vf.bridge.alloc_priv(vf.minor, "mapped", None)
        image.mmap_count += 1
        vf.bridge.ledger.acquire(_count_name(vf.minor), "mapped")


VME_USER_VM_OPS = VmeUserMappedVmOps()
VME_USER_LEGACY_VM_OPS = VmeUserVmOps()


class VmeUserFops(FileOperations):
    """vme_user_fops with vme_user_mmap_prepare (v4 16/21)."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        require_mapped(desc.mm, "vme_user")
        vf = state_of(desc.file, VmeUserFile)
        image = _master_image(vf)
        image.mutex_holds += 1
        phys = vme_master_window(image.resource, desc.pgoff, desc.size)
        desc.page_prot = pgprot_noncached(desc.page_prot)
        mmap_action_simple_ioremap(desc, phys, desc.size)
        desc.vm_ops = VME_USER_VM_OPS


class VmeUserLegacyFops(FileOperations):
    """vme_user_fops with the pre-series vme_user_mmap / vme_user_master_mmap."""

    def mmap(self, file: File, vma: Vma) -> None:
        vf = state_of(file, VmeUserFile)
        image = _master_image(vf)
        image.mutex_holds += 1
        length = vma.vm_end - vma.vm_start
        phys = vme_master_window(image.resource, vma.vm_pgoff, length)
        vma.vm_page_prot = pgprot_noncached(vma.vm_page_prot)
        vm_iomap_memory(vma, phys, length)
        priv = vf.bridge.alloc_priv(vf.minor, "mmap", vma.id)
        vma.vm_ops = VME_USER_LEGACY_VM_OPS
        vma.vm_private_data = priv
        image.mmap_count += 1
        vf.bridge.ledger.acquire(_count_name(vf.minor), "mmap", vma.id)


def open_device(
    bridge: VmeUserBridge, minor: int, flags: int = O_RDWR, *, form: str = "new"
) -> File:
    """open("/dev/bus/vme/mN"): the minor must exist."""
    check_form(form)
    image = bridge.image(minor)
    f_op: FileOperations = VmeUserFops() if form == "new" else VmeUserLegacyFops()
    return char_device(
        f"/dev/bus/vme/{image.kind[0]}{minor}", f_op, VmeUserFile(bridge, minor),
        flags=flags, dev=(221, minor), ino=2210 + minor, kind="vme_user",
    )
