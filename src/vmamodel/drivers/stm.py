"""stm - System Trace Module (drivers/hwtracing/stm/core.c), v4 15/21.

A file gets channels assigned by ioctl; mmap maps exactly those channels' MMIO window. The
device's runtime-PM usage count is the resource: one reference per VMA object.

Old stm_char_mmap: checks, then a synchronous PM get, flags, vm_ops, and vm_iomap_memory()
whose failure is ignored (success with an unpopulated VMA, reference held).
New stm_char_mmap_prepare + stm_mmap_mapped: same checks, no reference in prepare; the
synchronous get moves to ``mapped``, after the remap succeeded. open/close unchanged.
Inferred (docs/drivers.md section 6): a remap that fails in mmap_action_complete() skips
``mapped`` but the unmap still runs ``close`` - one put without a get (the ledger shows an
underflow).
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vmamodel.constants import O_RDWR, PAGE_SIZE, VM
from vmamodel.drivers.common import char_device, check_form, fail, require_mapped, state_of
from vmamodel.drivers.ledger import Ledger
from vmamodel.file import File, FileOperations, Ref, VmOperations
from vmamodel.mmap_action import mmap_action_simple_ioremap, vm_iomap_memory
from vmamodel.vma import pgprot_noncached

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc

PM = "pm_runtime"
STM_FLAGS = VM.IO | VM.DONTEXPAND | VM.DONTDUMP


@dataclass(slots=True)
class StmDevice:
    """An stm_device: ``has_mmio`` is whether stm_data has an mmio_addr callback.

    ``mmio_addr`` returns ``mmio_base`` plus the channel offset, or 0 when
    ``mmio_returns_zero`` (the device cannot map that range). ``ignored_errors`` collects
    the errnos the old form swallowed.
    """

    name: str = "stm0"
    has_mmio: bool = True
    sw_mmiosz: int = PAGE_SIZE
    mmio_base: int = 0xE000_0000
    mmio_returns_zero: bool = False
    ledger: Ledger = field(default_factory=lambda: Ledger("stm"))
    #: a log, not state (compare=False)
    ignored_errors: list[int] = field(default_factory=list, compare=False)

    def mmio_addr(self, output: StmOutput) -> int:
        if self.mmio_returns_zero:
            return 0
        return self.mmio_base + output.channel * self.sw_mmiosz


@dataclass(slots=True)
class StmOutput:
    """stmf->output: the master/channels this file was assigned (0 channels: none yet)."""

    master: int = 0
    channel: int = 0
    nr_chans: int = 0


@dataclass(slots=True)
class StmFile:
    """file->private_data of /dev/stmN."""

    device: StmDevice
    output: StmOutput


def _device_of(file: File | None) -> StmDevice:
    return state_of(file, StmFile).device


def stm_mmap_range(stmf: StmFile, pgoff: int, length: int) -> tuple[int, int]:
    """The checks of both forms, in order; returns (phys, size)."""
    stm = stmf.device
    if not stm.has_mmio:
        raise fail(E.EOPNOTSUPP, "stm: no mmio_addr")
    if pgoff:
        raise fail(E.EINVAL, "stm: non-zero offset")
    size = stmf.output.nr_chans * stm.sw_mmiosz
    if length != size:
        raise fail(E.EINVAL, f"stm: length {length:#x} != {size:#x}")
    phys = stm.mmio_addr(stmf.output)
    if not phys:
        raise fail(E.EINVAL, "stm: mmio_addr returned 0")
    return phys, size


class StmVmOps(VmOperations):
    """stm_mmap_vmops: open takes a PM reference (async), close drops one."""

    def open(self, vma: Vma) -> None:
        _device_of(vma.vm_file).ledger.acquire(PM, "open", vma.id)

    def close(self, vma: Vma) -> None:
        # pm_runtime_mark_last_busy + pm_runtime_put_autosuspend
        _device_of(vma.vm_file).ledger.release(PM, "close", vma.id)


class StmMappedVmOps(StmVmOps):
    """v4 stm_mmap_vmops: gains ``mapped`` = stm_mmap_mapped (synchronous PM get)."""

    def mapped(
        self, start: int, end: int, pgoff: int, file: File | None, private: Ref[Any]
    ) -> None:
        del start, end, pgoff, private  # the reference is per device, not per range
        _device_of(file).ledger.acquire(PM, "mapped")


STM_VM_OPS = StmMappedVmOps()
STM_LEGACY_VM_OPS = StmVmOps()


class StmFops(FileOperations):
    """stm_fops with stm_char_mmap_prepare (v4 15/21)."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        require_mapped(desc.mm, "stm")
        phys, size = stm_mmap_range(state_of(desc.file, StmFile), desc.pgoff, desc.size)
        desc.page_prot = pgprot_noncached(desc.page_prot)
        desc.vm_flags |= STM_FLAGS
        desc.vm_ops = STM_VM_OPS
        mmap_action_simple_ioremap(desc, phys, size)


class StmLegacyFops(FileOperations):
    """stm_fops with the pre-series stm_char_mmap."""

    def mmap(self, file: File, vma: Vma) -> None:
        stmf = state_of(file, StmFile)
        phys, size = stm_mmap_range(stmf, vma.vm_pgoff, vma.vm_end - vma.vm_start)
        stmf.device.ledger.acquire(PM, "mmap", vma.id)  # pm_runtime_get_sync
        vma.vm_page_prot = pgprot_noncached(vma.vm_page_prot)
        vma.vm_flags |= STM_FLAGS
        vma.vm_ops = STM_LEGACY_VM_OPS
        try:
            vm_iomap_memory(vma, phys, size)
        except OSError as exc:  # the old hook ignored this and returned 0
            stmf.device.ignored_errors.append(exc.errno or 0)


def open_device(
    dev: StmDevice,
    *,
    nr_chans: int = 1,
    master: int = 0,
    channel: int = 0,
    flags: int = O_RDWR,
    form: str = "new",
) -> File:
    """open("/dev/stm0") followed by the STP_POLICY_ID_SET ioctl assigning channels."""
    check_form(form)
    f_op: FileOperations = StmFops() if form == "new" else StmLegacyFops()
    state = StmFile(dev, StmOutput(master, channel, nr_chans))
    return char_device(f"/dev/{dev.name}", f_op, state, flags=flags, dev=(240, 0), kind="stm")
