"""hpet (drivers/char/hpet.c): one non-cached page of the HPET block, v4 13/21.

Old: hpet_mmap() checks the switch and the alignment, then vm_iomap_memory() on the VMA.
New: hpet_mmap_prepare() runs the same checks on the desc and asks for
mmap_action_simple_ioremap(); the length/offset EINVAL then comes from action prepare,
before any VMA exists. No vm_ops, no references: nothing to count.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmamodel.constants import O_RDONLY, PAGE_MASK, PAGE_SIZE
from vmamodel.drivers.common import char_device, check_form, fail, state_of, wants_write
from vmamodel.file import File, FileOperations
from vmamodel.mmap_action import mmap_action_simple_ioremap, vm_iomap_memory
from vmamodel.vma import pgprot_noncached

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc

HPET_DEFAULT_PHYS = 0xFED00000


@dataclass(slots=True)
class HpetDevice:
    """The first HPET block (hd_hpets->hp_hpet_phys) and the mmap switches.

    ``config_mmap`` is CONFIG_HPET_MMAP (off: the hook is a stub returning ENOSYS);
    ``mmap_enabled`` is hpet_mmap_enabled (CONFIG_HPET_MMAP_DEFAULT / ``hpet_mmap=``).
    """

    phys: int = HPET_DEFAULT_PHYS
    mmap_enabled: bool = True
    config_mmap: bool = True


def hpet_mmap_checks(dev: HpetDevice) -> None:
    """The checks both forms share, in order: stub, switch (EACCES), alignment (ENOSYS)."""
    if not dev.config_mmap:
        raise fail(E.ENOSYS, "CONFIG_HPET_MMAP=n")
    if not dev.mmap_enabled:
        raise fail(E.EACCES, "hpet_mmap disabled")
    if dev.phys & ~PAGE_MASK:
        raise fail(E.ENOSYS, "HPET base not page aligned")


class HpetFops(FileOperations):
    """hpet_fops with hpet_mmap_prepare (v4 13/21)."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        dev = state_of(desc.file, HpetDevice)
        hpet_mmap_checks(dev)
        desc.page_prot = pgprot_noncached(desc.page_prot)
        mmap_action_simple_ioremap(desc, dev.phys, PAGE_SIZE)


class HpetLegacyFops(FileOperations):
    """hpet_fops with the pre-series hpet_mmap."""

    def mmap(self, file: File, vma: Vma) -> None:
        dev = state_of(file, HpetDevice)
        hpet_mmap_checks(dev)
        vma.vm_page_prot = pgprot_noncached(vma.vm_page_prot)
        vm_iomap_memory(vma, dev.phys, PAGE_SIZE)


def open_device(dev: HpetDevice, flags: int = O_RDONLY, *, form: str = "new") -> File:
    """open("/dev/hpet"): hpet_open() (drivers/char/hpet.c) refuses write mode with EINVAL,
    so a shared writable mapping can never be asked for."""
    check_form(form)
    if wants_write(flags):
        raise fail(E.EINVAL, "hpet_open: FMODE_WRITE")
    f_op: FileOperations = HpetFops() if form == "new" else HpetLegacyFops()
    return char_device("/dev/hpet", f_op, dev, flags=flags, dev=(10, 228), ino=228, kind="hpet")
