"""mtdchar (drivers/mtd/mtdchar.c), v4 14/21.

On MMU kernels both forms refuse every mmap with ENODEV (the old function's mapping branch
has been dead since 2012 and the series deletes it). NOMMU: shared mappings succeed with
nothing mapped by the driver, private ones get EACCES. The old form fails after the VMA was
allocated, the new one before - the errno is the same.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmamodel.constants import O_RDWR, VM
from vmamodel.drivers.common import char_device, check_form, fail, state_of
from vmamodel.file import File, FileOperations

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc


@dataclass(slots=True)
class MtdDevice:
    """An MTD partition's char device; ``mmu`` selects the kernel flavour."""

    index: int = 0
    mmu: bool = True


def mtdchar_mmap_rule(dev: MtdDevice, vm_flags: int) -> None:
    """The decision both forms make: MMU -> ENODEV; NOMMU -> VM_SHARED or EACCES."""
    if dev.mmu:
        raise fail(E.ENODEV, "mtdchar: no mmap on MMU kernels")
    if not vm_flags & VM.SHARED:
        raise fail(E.EACCES, "mtdchar: NOMMU private mapping")


class MtdcharFops(FileOperations):
    """mtd_fops with mtdchar_mmap_prepare (v4 14/21): no action, no vm_ops."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        mtdchar_mmap_rule(state_of(desc.file, MtdDevice), desc.vm_flags)


class MtdcharLegacyFops(FileOperations):
    """mtd_fops with the pre-series mtdchar_mmap."""

    def mmap(self, file: File, vma: Vma) -> None:
        mtdchar_mmap_rule(state_of(file, MtdDevice), vma.vm_flags)


def open_device(dev: MtdDevice, flags: int = O_RDWR, *, form: str = "new") -> File:
    """open("/dev/mtdN")."""
    check_form(form)
    f_op: FileOperations = MtdcharFops() if form == "new" else MtdcharLegacyFops()
    minor = dev.index * 2
    return char_device(
        f"/dev/mtd{dev.index}", f_op, dev, flags=flags, dev=(90, minor), ino=900 + minor,
        kind="mtdchar",
    )
