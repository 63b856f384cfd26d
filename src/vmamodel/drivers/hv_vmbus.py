"""Hyper-V vmbus channel ``ring`` sysfs file + uio_hv_generic (v4 18/21).

The ``ring`` binary attribute is reached through kernfs's legacy ``.mmap``
(kernfs_fop_mmap), which the series does not convert - a compat-path driver. Its mmap is
hv_mmap_ring_buffer_wrapper, dispatching to a per-channel callback that uio_hv_generic
installs with hv_create_ring_sysfs.

Old: callback ``(channel, vma)``: ENODEV unless the channel is open, then vm_iomap_memory.
New: callback ``(channel, desc)``; the wrapper builds the desc from the VMA, calls it, and
runs __compat_vma_mmap (prepare the action, write the desc back, complete on the VMA). In v4
the write-back leaves vm_ops None (the desc was not pre-filled), so kernfs records None as
the inner ops; mainline records the dummy ops. No ``mapped``, no references.

/dev/uioN of uio_hv_generic maps the same ring through uio's built-in IOVA path (map 0).
"""

from __future__ import annotations

import errno as E
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vmamodel.compat import call_prepare_hook, compat_set_desc_from_vma, compat_vma_mmap_tail
from vmamodel.constants import O_RDWR, PAGE_SHIFT
from vmamodel.drivers.common import char_device, check_form, fail, state_of
from vmamodel.drivers.uio import UioDevice, UioInfo, UioMem, UioMemType
from vmamodel.events import WarnOn
from vmamodel.file import File, FileOperations, VmOperations
from vmamodel.mmap_action import mm_of, mmap_action_simple_ioremap, vm_iomap_memory

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc

RingPrepare = Callable[["VmbusChannel", "VmAreaDesc"], None]
RingLegacy = Callable[["VmbusChannel", "Vma"], None]


@dataclass(eq=False, slots=True)
class VmbusChannel:
    """struct vmbus_channel: the ring's pages and the installed ring-mmap callback."""

    relid: int = 0
    ring_phys: int = 0x1_2340_0000
    ringbuffer_pagecount: int = 8
    opened: bool = True
    mmap_prepare_ring_buffer: RingPrepare | None = None
    mmap_ring_buffer: RingLegacy | None = None

    @property
    def ring_size(self) -> int:
        return self.ringbuffer_pagecount << PAGE_SHIFT

    @property
    def has_ring_sysfs(self) -> bool:
        return self.mmap_prepare_ring_buffer is not None or self.mmap_ring_buffer is not None


def hv_uio_ring_mmap_prepare(channel: VmbusChannel, desc: VmAreaDesc) -> None:
    """uio_hv_generic hv_uio_ring_mmap_prepare (v4 18/21)."""
    if not channel.opened:
        raise fail(E.ENODEV, "hv ring: channel not opened")
    mmap_action_simple_ioremap(desc, channel.ring_phys, channel.ring_size)


def hv_uio_ring_mmap(channel: VmbusChannel, vma: Vma) -> None:
    """uio_hv_generic hv_uio_ring_mmap before the series."""
    if not channel.opened:
        raise fail(E.ENODEV, "hv ring: channel not opened")
    vm_iomap_memory(vma, channel.ring_phys, channel.ring_size)


def hv_create_ring_sysfs(channel: VmbusChannel, *, form: str = "new") -> None:
    """hv_create_ring_sysfs(channel, cb) as uio_hv_generic calls it."""
    check_form(form)
    if form == "new":
        channel.mmap_prepare_ring_buffer = hv_uio_ring_mmap_prepare
    else:
        channel.mmap_ring_buffer = hv_uio_ring_mmap


def hv_remove_ring_sysfs(channel: VmbusChannel) -> None:
    """hv_remove_ring_sysfs(): the attribute goes away with its callback."""
    channel.mmap_prepare_ring_buffer = None
    channel.mmap_ring_buffer = None


@dataclass(slots=True)
class KernfsOpenFile:
    """struct kernfs_open_file of the ring: ``vm_ops`` is the inner ops kernfs wraps."""

    channel: VmbusChannel
    #: what the first mmap of this open file recorded; kept for the file's life by design,
    #: so not part of the state a mapping must give back (compare=False)
    mmapped: bool = field(default=False, compare=False)
    vm_ops: VmOperations | None = field(default=None, compare=False)
    removed: bool = False


class KernfsVmOps(VmOperations):
    """kernfs_vm_ops: forwards open to the recorded inner ops (None: nothing to do)."""

    def open(self, vma: Vma) -> None:
        inner = state_of(vma.vm_file, KernfsOpenFile).vm_ops
        if inner is not None and inner.open is not None:
            inner.open(vma)


KERNFS_VM_OPS = KernfsVmOps()


def hv_mmap_ring_buffer_wrapper(file: File, channel: VmbusChannel, vma: Vma) -> None:
    """hv_mmap_ring_buffer_wrapper() (drivers/hv/vmbus_drv.c)."""
    if channel.mmap_prepare_ring_buffer is not None:
        mm = mm_of(vma)
        prepare = channel.mmap_prepare_ring_buffer
        desc = compat_set_desc_from_vma(mm, file, vma)
        call_prepare_hook(
            mm, lambda d: prepare(channel, d), "hv_uio_ring_mmap_prepare", desc, vma
        )
        compat_vma_mmap_tail(mm, desc, vma)
    elif channel.mmap_ring_buffer is not None:
        channel.mmap_ring_buffer(channel, vma)
    else:  # the attribute is only visible with a callback installed
        raise fail(E.ENODEV, "hv ring: no callback")


def _kernfs_refuse(vma: Vma, what: str) -> OSError:
    mm = mm_of(vma)
    if mm.tracer.active:
        mm.tracer.emit(WarnOn(f"WARN_ON_ONCE: kernfs_fop_mmap {what}", repr(vma.vm_ops)))
    return fail(E.EINVAL, f"kernfs: inner vm_ops has {what}")


def kernfs_fop_mmap(file: File, vma: Vma) -> None:
    """kernfs_fop_mmap() (fs/kernfs/file.c): call the attribute's mmap, then wrap the ops.

    Refused: the node is gone (ENODEV), a second mmap of the same open file that produced
    different ops, inner ops with close or page_mkwrite (EINVAL, WARN).
    """
    of = state_of(file, KernfsOpenFile)
    if of.removed or not of.channel.has_ring_sysfs:
        raise fail(E.ENODEV, "kernfs: node removed")
    hv_mmap_ring_buffer_wrapper(file, of.channel, vma)
    if vma.vm_file is not file:
        return
    if of.mmapped and of.vm_ops is not vma.vm_ops:
        raise fail(E.EINVAL, "kernfs: vm_ops changed between mmaps")
    ops = vma.vm_ops
    if ops is not None and ops.close is not None:
        raise _kernfs_refuse(vma, "close")
    if ops is not None and ops.page_mkwrite is not None:
        raise _kernfs_refuse(vma, "page_mkwrite")
    if not of.mmapped:
        of.mmapped = True
        of.vm_ops = ops
    vma.vm_ops = KERNFS_VM_OPS


class KernfsRingFops(FileOperations):
    """kernfs_file_fops as seen by the ring attribute: a legacy ``.mmap``."""

    def mmap(self, file: File, vma: Vma) -> None:
        kernfs_fop_mmap(file, vma)


def open_ring(channel: VmbusChannel, flags: int = O_RDWR, device: str = "vmbus0") -> File:
    """open(".../channels/<relid>/ring"): ENOENT when no callback made it visible."""
    if not channel.has_ring_sysfs:
        raise fail(E.ENOENT, "hv ring: attribute not present")
    path = f"/sys/bus/vmbus/devices/{device}/channels/{channel.relid}/ring"
    return char_device(path, KernfsRingFops(), KernfsOpenFile(channel), flags=flags, kind="sysfs")


@dataclass(eq=False, slots=True)
class HvUioDevice:
    """uio_hv_generic's device: the primary channel and its uio device (map 0 = ring)."""

    channel: VmbusChannel
    uio: UioDevice = field(init=False)

    def __post_init__(self) -> None:
        ring = UioMem(self.channel.ring_phys, self.channel.ring_size, UioMemType.IOVA)
        self.uio = UioDevice(0, UioInfo(name="uio_hv_generic", mem=[ring]))


def hv_uio_probe(channel: VmbusChannel, *, form: str = "new") -> HvUioDevice:
    """hv_uio_probe(): register the uio device and the ring sysfs callback."""
    hv_create_ring_sysfs(channel, form=form)
    return HvUioDevice(channel)
