"""open-dice (drivers/misc/open-dice.c): the DICE reserved-memory region, v4 12/21.

Both forms: a shareable mapping must not be writable (EPERM) and loses VM_MAYWRITE so it
can never become writable; page_prot write-combining; VM_DONTCOPY|VM_DONTDUMP; then the
region is I/O-remapped with vm_pgoff as a page offset into it. The new form clears the
flag in the desc, which the normal mmap path copies back wholesale.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmamodel.constants import O_RDWR, VM
from vmamodel.drivers.common import char_device, check_form, fail, state_of
from vmamodel.file import File, FileOperations
from vmamodel.mmap_action import mmap_action_simple_ioremap, vm_iomap_memory
from vmamodel.vma import pgprot_writecombine

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc


@dataclass(slots=True)
class OpenDiceDevice:
    """drvdata->rmem: the reserved region's physical base and size."""

    base: int = 0x8000_0000
    size: int = 0x2000


def open_dice_flags(vm_flags: int) -> int:
    """The flag rules of both forms: EPERM for shared+write, else the adjusted flags."""
    if vm_flags & VM.MAYSHARE:
        if vm_flags & VM.WRITE:
            raise fail(E.EPERM, "open-dice: shared writable mapping")
        vm_flags &= ~VM.MAYWRITE
    return vm_flags | VM.DONTCOPY | VM.DONTDUMP


class OpenDiceFops(FileOperations):
    """open_dice_fops with open_dice_mmap_prepare (v4 12/21)."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        dev = state_of(desc.file, OpenDiceDevice)
        desc.vm_flags = open_dice_flags(desc.vm_flags)
        desc.page_prot = pgprot_writecombine(desc.page_prot)
        mmap_action_simple_ioremap(desc, dev.base, dev.size)


class OpenDiceLegacyFops(FileOperations):
    """open_dice_fops with the pre-series open_dice_mmap."""

    def mmap(self, file: File, vma: Vma) -> None:
        dev = state_of(file, OpenDiceDevice)
        vma.vm_flags = open_dice_flags(vma.vm_flags)
        vma.vm_page_prot = pgprot_writecombine(vma.vm_page_prot)
        vm_iomap_memory(vma, dev.base, dev.size)


def open_device(dev: OpenDiceDevice, flags: int = O_RDWR, *, form: str = "new") -> File:
    """open("/dev/open-dice0") (a misc device, mode 0600 - the model does not check it)."""
    check_form(form)
    f_op: FileOperations = OpenDiceFops() if form == "new" else OpenDiceLegacyFops()
    return char_device(
        "/dev/open-dice0", f_op, dev, flags=flags, dev=(10, 125), ino=125, kind="open-dice"
    )
