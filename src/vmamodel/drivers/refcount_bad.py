"""refcount_bad: the teaching driver that takes its reference in ``mmap_prepare``.

That is what a driver converted naively from ``.mmap`` does (and what AFS did in
9d5403b1036c). ``mmap_prepare`` runs before the merge decision and before steps that can
still fail, so the reference leaks:

- when the new range merges into an adjacent VMA (no new VMA object, so no ``close`` will
  ever drop it);
- when mmap fails after the hook (VMA allocation, action prepare/complete, ...), except
  the failures whose clean-up unmaps a VMA of ours and so runs ``close``.

``open`` and ``close`` are right; only the first reference is taken in the wrong place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vmamodel.constants import O_RDWR
from vmamodel.drivers.common import char_device, state_of
from vmamodel.drivers.ledger import Ledger
from vmamodel.file import File, FileOperations, VmOperations

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc

REF = "ref"


@dataclass(eq=False, slots=True)
class BadDevice:
    """The object whose references the driver (mis)counts."""

    name: str = "bad0"
    ledger: Ledger = field(default_factory=lambda: Ledger("refcount_bad"))

    @property
    def refs(self) -> int:
        return self.ledger.count(REF)


def _device_of(file: File | None) -> BadDevice:
    return state_of(file, BadDevice)


class BadVmOps(VmOperations):
    """open takes a reference, close drops it - correct in themselves."""

    def open(self, vma: Vma) -> None:
        _device_of(vma.vm_file).ledger.acquire(REF, "open", vma.id)

    def close(self, vma: Vma) -> None:
        _device_of(vma.vm_file).ledger.release(REF, "close", vma.id)


BAD_VM_OPS = BadVmOps()


class BadFops(FileOperations):
    """mmap_prepare takes the reference - too early."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        _device_of(desc.file).ledger.acquire(REF, "mmap_prepare")
        desc.vm_ops = BAD_VM_OPS


def open_device(dev: BadDevice, flags: int = O_RDWR) -> File:
    """open("/dev/bad0")."""
    return char_device(f"/dev/{dev.name}", BadFops(), dev, flags=flags, kind="refcount_bad")
