"""File descriptor tables of a recorded process: which open file description each fd names.

The kernel merges two file mappings only when they map the same ``struct file`` (the open file
description), never two opens of one inode: so the replay follows descriptions, not paths.
``openat`` and friends create one; ``dup``, ``dup2``, ``dup3`` and ``fcntl(F_DUPFD[_CLOEXEC])``
give it another number; ``close``/``close_range`` drop numbers. A thread created with
CLONE_FILES shares its creator's table; other tasks get a copy (``fork``, ``vfork``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmamodel.constants import O_ACCMODE
from vmamodel.file import File

__all__ = ["Description", "FdTable"]

F_DUPFD = 0
F_DUPFD_CLOEXEC = 1030
CLOSE_RANGE_CLOEXEC = 4


@dataclass(eq=False, slots=True)
class Description:
    """An open file description: what was opened (path as -y printed it), with which mode,
    and what fstat said of it (device, inode, size; None until seen). ``before_start``: it
    was opened before the start snapshot, so a seeded VMA may map it."""

    path: str
    flags: int
    line: int
    before_start: bool = False
    dev: tuple[int, int] | None = None
    ino: int | None = None
    size: int | None = None
    memfd: str | None = None
    file: File | None = None

    @property
    def mode(self) -> int:
        return self.flags & O_ACCMODE


@dataclass(slots=True)
class FdTable:
    """One files_struct: fd number -> description."""

    fds: dict[int, Description] = field(default_factory=dict)

    def install(self, fd: int, desc: Description) -> None:
        self.fds[fd] = desc

    def get(self, fd: int) -> Description | None:
        return self.fds.get(fd)

    def dup(self, old: int, new: int) -> None:
        """dup/dup2/dup3/F_DUPFD: ``new`` names ``old``'s description (an fd the replay does
        not know, such as a pipe, makes ``new`` unknown too)."""
        desc = self.fds.get(old)
        if desc is None:
            self.fds.pop(new, None)
        else:
            self.fds[new] = desc

    def close(self, fd: int) -> None:
        self.fds.pop(fd, None)

    def close_range(self, first: int, last: int, flags: int) -> None:
        """close_range(2); with CLOSE_RANGE_CLOEXEC nothing is closed now."""
        if flags & CLOSE_RANGE_CLOEXEC:
            return
        for fd in [fd for fd in self.fds if first <= fd <= last]:
            del self.fds[fd]

    def copy(self) -> FdTable:
        """dup_fd(): a child's own table naming the same descriptions."""
        return FdTable(dict(self.fds))
