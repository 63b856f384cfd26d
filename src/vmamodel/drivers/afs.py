"""AFS (fs/afs/file.c): the per-vnode count of live mappings, v4 09/21 and 10/21.

``cb_nr_mmap`` must equal the number of live VMA objects mapping the vnode through
afs_vm_ops, and the vnode sits on its volume's ``open_mmaps`` list exactly while it is
non-zero (callback breaks then zap the vnode's mapped pages).

Three forms:

- ``legacy`` (<= 6.16, and v4 09/21): afs_file_mmap adds, generic_file_mmap (ENOEXEC
  without read_folio; drop on failure), then vm_ops = afs_vm_ops.
- ``buggy_prepare`` (9d5403b1036c, 6.17): the add moved into mmap_prepare - it leaks when
  the range merges into a neighbour or a later step of mmap fails.
- ``new`` (v4 10/21): prepare only sets afs_vm_ops; ``mapped`` adds.

AFS VMAs are ordinary file VMAs: a new range next to an AFS VMA of the same file with a
contiguous pgoff merges, and no VMA object - hence no count - is created for it.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vmamodel.constants import O_RDWR
from vmamodel.drivers.common import fail, require_mapped, state_of
from vmamodel.drivers.ledger import Ledger
from vmamodel.file import File, FileOperations, Ref, VmOperations

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc

AFS_FORMS = ("new", "legacy", "buggy_prepare")
MMAP = "cb_nr_mmap"


@dataclass(eq=False, slots=True)
class AfsVolume:
    """struct afs_volume: the open_mmaps list (vnodes with live mappings)."""

    name: str = "vol0"
    open_mmaps: list[AfsVnode] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class AfsVnode:
    """struct afs_vnode: ``has_read_folio`` stands for the address_space operations."""

    volume: AfsVolume
    path: str = "/afs/cell/file"
    size: int = 1 << 20
    has_read_folio: bool = True
    ledger: Ledger = field(default_factory=lambda: Ledger("afs"))
    #: a statistic, not state (compare=False)
    callback_work_flushes: int = field(default=0, compare=False)

    @property
    def cb_nr_mmap(self) -> int:
        return self.ledger.count(MMAP)

    @property
    def on_list(self) -> bool:
        return any(v is self for v in self.volume.open_mmaps)


def afs_add_open_mmap(vnode: AfsVnode, cause: str, vma_id: int | None = None) -> None:
    """afs_add_open_mmap(): count; on 0 -> 1 put the vnode on the volume's list."""
    if vnode.ledger.acquire(MMAP, cause, vma_id) == 1 and not vnode.on_list:
        vnode.volume.open_mmaps.append(vnode)


def afs_drop_open_mmap(vnode: AfsVnode, cause: str, vma_id: int | None = None) -> None:
    """afs_drop_open_mmap(): uncount; on 1 -> 0 take it off the list, flush callback work."""
    if vnode.ledger.release(MMAP, cause, vma_id) == 0:
        vnode.volume.open_mmaps[:] = [v for v in vnode.volume.open_mmaps if v is not vnode]
        vnode.callback_work_flushes += 1


def _vnode_of(file: File | None) -> AfsVnode:
    return state_of(file, AfsVnode)


class AfsVmOps(VmOperations):
    """afs_vm_ops before v4 10/21: open adds, close drops (fault/map_pages not modelled)."""

    def open(self, vma: Vma) -> None:
        afs_add_open_mmap(_vnode_of(vma.vm_file), "open", vma.id)

    def close(self, vma: Vma) -> None:
        afs_drop_open_mmap(_vnode_of(vma.vm_file), "close", vma.id)

    def page_mkwrite(self, *args: Any) -> None:  # pragma: no cover - not modelled
        return None


class AfsMappedVmOps(AfsVmOps):
    """afs_vm_ops of v4 10/21: ``mapped`` = afs_mapped adds (never fails)."""

    def mapped(
        self, start: int, end: int, pgoff: int, file: File | None, private: Ref[Any]
    ) -> None:
        del start, end, pgoff, private
        afs_add_open_mmap(_vnode_of(file), "mapped")


AFS_VM_OPS = AfsMappedVmOps()
AFS_LEGACY_VM_OPS = AfsVmOps()


def generic_file_check(vnode: AfsVnode) -> None:
    """generic_file_mmap[_prepare](): no read_folio -> ENOEXEC."""
    if not vnode.has_read_folio:
        raise fail(E.ENOEXEC, "afs: no read_folio")


class AfsFops(FileOperations):
    """afs_file_operations with afs_file_mmap_prepare of v4 10/21."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        require_mapped(desc.mm, "afs")
        generic_file_check(_vnode_of(desc.file))
        desc.vm_ops = AFS_VM_OPS


class AfsBuggyPrepareFops(FileOperations):
    """afs_file_mmap_prepare of 9d5403b1036c: counts in prepare (leaks)."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        vnode = _vnode_of(desc.file)
        afs_add_open_mmap(vnode, "mmap_prepare")
        try:
            generic_file_check(vnode)
        except OSError:
            afs_drop_open_mmap(vnode, "mmap_prepare")
            raise
        desc.vm_ops = AFS_LEGACY_VM_OPS


class AfsLegacyFops(FileOperations):
    """afs_file_mmap (legacy form, restored by v4 09/21)."""

    def mmap(self, file: File, vma: Vma) -> None:
        vnode = _vnode_of(file)
        afs_add_open_mmap(vnode, "mmap", vma.id)
        try:
            generic_file_check(vnode)
        except OSError:
            afs_drop_open_mmap(vnode, "mmap", vma.id)
            raise
        vma.vm_ops = AFS_LEGACY_VM_OPS


def open_file(vnode: AfsVnode, flags: int = O_RDWR, *, form: str = "new") -> File:
    """open(2) of an AFS file; each call is a new struct file (mappings of different
    struct files never merge)."""
    if form not in AFS_FORMS:
        raise ValueError(f"unknown AFS form {form!r}; choose from {AFS_FORMS}")
    f_op: FileOperations
    if form == "new":
        f_op = AfsFops()
    elif form == "buggy_prepare":
        f_op = AfsBuggyPrepareFops()
    else:
        f_op = AfsLegacyFops()
    return File(
        path=vnode.path, size=vnode.size, flags=flags, f_op=f_op, dev=(0, 40),
        ino=4000, private_data=vnode, kind="afs",
    )
