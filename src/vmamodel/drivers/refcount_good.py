"""refcount_good: the teaching driver that counts mappings the way the series intends.

``mmap_prepare`` only describes the mapping (vm_ops); it takes nothing, because the range
may still merge into a neighbour or a later step of mmap may fail. The reference is taken
in ``mapped`` - called once, only for a newly established VMA, after everything that could
fail - and in ``open`` for every VMA made from an existing one (split piece, fork copy,
mremap copy). ``close`` drops one per VMA object. Like AFS and TCMU it has no action and its
``mapped`` cannot fail, so the ledger balances over any sequence the kernel can produce.

Two limits of the API it illustrates (mmap_action_finish() in mm/util.c; docs/drivers.md
sections 2.2 and 12):

- ``close`` runs on a VMA whose ``mapped`` failed or whose action failed. A driver whose
  ``mapped`` can fail cannot tell such a VMA from a counted one if its mappings can merge:
  the only per-VMA channel, vm_private_data, is overwritten on a merge target by the new
  desc's private_data (set_vma_user_defined_fields() in mm/vma.c). The model's "mapped"
  failure point therefore shows one release without an acquire for this driver.
- ``mapped`` hands out a per-mapping handle through the private-data out-parameter, and
  ``close`` deliberately does not depend on it: a merge replaces it with None.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vmamodel.constants import O_RDWR
from vmamodel.drivers.common import char_device, require_mapped, state_of
from vmamodel.drivers.ledger import Ledger
from vmamodel.file import File, FileOperations, Ref, VmOperations

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc

REF = "ref"


@dataclass(frozen=True, slots=True)
class MappingHandle:
    """What ``mapped`` stores in vm_private_data for one established mapping."""

    ident: int
    start: int
    end: int
    pgoff: int


@dataclass(eq=False, slots=True)
class GoodDevice:
    """The object whose references the driver counts."""

    name: str = "good0"
    ledger: Ledger = field(default_factory=lambda: Ledger("refcount_good"))
    _ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(1), compare=False
    )

    @property
    def refs(self) -> int:
        return self.ledger.count(REF)

    def new_handle(self, start: int, end: int, pgoff: int) -> MappingHandle:
        return MappingHandle(next(self._ids), start, end, pgoff)


def _device_of(file: File | None) -> GoodDevice:
    return state_of(file, GoodDevice)


class GoodVmOps(VmOperations):
    """mapped / open take a reference, close drops it."""

    def mapped(
        self, start: int, end: int, pgoff: int, file: File | None, private: Ref[Any]
    ) -> None:
        dev = _device_of(file)
        dev.ledger.acquire(REF, "mapped")
        private.value = dev.new_handle(start, end, pgoff)

    def open(self, vma: Vma) -> None:
        _device_of(vma.vm_file).ledger.acquire(REF, "open", vma.id)

    def close(self, vma: Vma) -> None:
        _device_of(vma.vm_file).ledger.release(REF, "close", vma.id)


GOOD_VM_OPS = GoodVmOps()


class GoodFops(FileOperations):
    """mmap_prepare sets the ops and nothing else."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        require_mapped(desc.mm, "refcount_good")
        _device_of(desc.file)
        desc.vm_ops = GOOD_VM_OPS


def open_device(dev: GoodDevice, flags: int = O_RDWR) -> File:
    """open("/dev/good0")."""
    return char_device(f"/dev/{dev.name}", GoodFops(), dev, flags=flags, kind="refcount_good")
