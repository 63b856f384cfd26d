"""/dev/zero (drivers/char/mem.c): what mmap of it makes.

A shared mapping becomes shared anonymous memory: mmap_zero calls shmem_zero_setup, so the
VMA's file is a new shmem ``/dev/zero (deleted)`` file, as for MAP_SHARED|MAP_ANONYMOUS.
A private mapping is made anonymous (vma_set_anonymous: no vm_ops) but keeps /dev/zero as
its file: maps shows ``/dev/zero`` with the file offset, and it merges only with private
mappings of the same open file at the matching offset. Placement (get_unmapped_area_zero):
shmem's for shared mappings, THP-aligned for private ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmamodel.constants import MAP_SHARED, O_RDWR, VM_SHARED
from vmamodel.file import File, FileOperations
from vmamodel.mmap import shmem_zero_setup
from vmamodel.unmapped_area import shmem_get_unmapped_area, thp_get_unmapped_area

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma

#: /dev/zero on devtmpfs as the host shows it (character device 1:5, inode 4 on 0:6).
DEV_ZERO_DEV = (0, 6)
DEV_ZERO_INO = 4


def mmap_zero(file: File, vma: Vma) -> None:
    """mmap_zero(): shared: shmem_zero_setup(); private: vma_set_anonymous()."""
    if vma.vm_flags & VM_SHARED:
        assert vma.vm_mm is not None
        shmem_zero_setup(vma.vm_mm, vma)
        return
    vma.vm_ops = None


def get_unmapped_area_zero(
    mm: AddressSpace, file: File | None, addr: int, length: int, pgoff: int, flags: int
) -> int:
    """get_unmapped_area_zero(): shmem's placement (without the file) for MAP_SHARED,
    thp_get_unmapped_area() otherwise."""
    if flags & MAP_SHARED:
        return shmem_get_unmapped_area(mm, None, addr, length, pgoff, flags)
    return thp_get_unmapped_area(mm, file, addr, length, pgoff, flags)


class ZeroFileOperations(FileOperations):
    """zero_fops: mmap_zero (a legacy .mmap) and get_unmapped_area_zero."""

    def __init__(self) -> None:
        self.mmap = mmap_zero
        self.get_unmapped_area = get_unmapped_area_zero


def open_dev_zero(
    flags: int = O_RDWR, *, dev: tuple[int, int] = DEV_ZERO_DEV, ino: int = DEV_ZERO_INO
) -> File:
    """open(2) of /dev/zero: a new struct file each time."""
    return File(path="/dev/zero", size=0, flags=flags, f_op=ZeroFileOperations(), dev=dev,
                ino=ino, kind="chardev")
