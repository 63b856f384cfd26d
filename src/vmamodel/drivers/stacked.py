"""A stacked file (overlayfs / backing-file style): a legacy ``.mmap`` that forwards to the
file underneath.

backing_file_mmap() (fs/backing-file.c): the backing file must be one (EIO, WARN), must be
mappable (ENODEV), then becomes the VMA's file (vma_set_file) and vfs_mmap() runs on it -
so an inner ``mmap_prepare`` goes through the compat layer, which calls the inner
``mapped`` there and then. The "accessed" callback runs whatever vfs_mmap returned.

``fail_after`` (an errno) makes the outer hook fail after the inner mmap succeeded - a later
step of a legacy hook. The VMA is then freed without ``close`` (the error path of
__mmap_new_file_vma() in mm/vma.c; docs/drivers.md section 2.3): a reference the inner
``mapped`` took leaks. v4 reaches the same state on every mmap through
__vma_check_mmap_hook, which rejects the inner ``mapped`` once the outer ``.mmap`` returns.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vmamodel.compat import vfs_mmap, vma_set_file
from vmamodel.drivers.common import fail, state_of
from vmamodel.file import File, FileOperations, file_has_mmap
from vmamodel.mmap_action import mm_of

if TYPE_CHECKING:
    from vmamodel.vma import Vma


@dataclass(eq=False, slots=True)
class StackedFile:
    """file->private_data of the user-visible (upper) file."""

    inner: File
    is_backing: bool = True
    fail_after: int = 0
    #: a statistic, not state (compare=False)
    accessed: int = field(default=0, compare=False)


class StackedFops(FileOperations):
    """ovl_file_operations-like: only the legacy ``.mmap``."""

    def mmap(self, file: File, vma: Vma) -> None:
        stacked = state_of(file, StackedFile)
        backing_file_mmap(stacked, vma)
        if stacked.fail_after:
            raise fail(stacked.fail_after, "stacked: a later step of the outer mmap")


def backing_file_mmap(stacked: StackedFile, vma: Vma) -> None:
    """backing_file_mmap(): checks, vma_set_file, vfs_mmap on the backing file."""
    inner = stacked.inner
    if not stacked.is_backing:
        raise fail(E.EIO, "backing_file_mmap: not a backing file")
    if not file_has_mmap(inner):
        raise fail(E.ENODEV, "backing_file_mmap: backing file cannot mmap")
    mm = mm_of(vma)
    vma_set_file(mm, vma, inner)
    try:
        vfs_mmap(mm, inner, vma)
    finally:
        stacked.accessed += 1


def open_stacked(inner: File, *, path: str | None = None, fail_after: int = 0) -> File:
    """open(2) on the upper layer of a stack whose backing file is ``inner``."""
    return File(
        path=path if path is not None else f"/overlay{inner.path}",
        size=inner.size,
        flags=inner.flags,
        f_op=StackedFops(),
        dev=(0, 50),
        ino=inner.ino,
        private_data=StackedFile(inner, fail_after=fail_after),
        kind="stacked",
    )
