"""DriverError and DriverFault, the exceptions of a driver hook that misbehaves.

They live apart from hooks.py because they subclass built-in exceptions, which mypyc cannot
compile: this module stays plain Python in the compiled build, and hooks.py (compiled) raises
them, as access_fault.py does for AccessFault.
"""

from __future__ import annotations

import errno
import os


class DriverError(RuntimeError):
    """A driver hook misbehaved: it raised something other than an ``OSError`` with an
    errno (in the kernel: an oops), or it set a field to a value of the wrong type.

    The system call is undone as if the hook had failed with EFAULT (a hook that cannot fail,
    ``open`` or ``close``, counts as done), then this is raised from the entry point.
    ``hook`` names the hook, ``owner`` its operations, ``vma_id`` the VMA (None before one
    exists); the original exception is ``__cause__``."""

    def __init__(self, hook: str, owner: str, vma_id: int | None, original: BaseException):
        where = f"VMA {vma_id}" if vma_id is not None else "no VMA yet"
        super().__init__(f"driver hook {owner}.{hook} ({where}) failed: {original!r}")
        self.hook = hook
        self.owner = owner
        self.vma_id = vma_id
        self.original = original
        self.__cause__ = original


class DriverFault(OSError):
    """How a DriverError travels through the model's OSError rollback paths (EFAULT); the
    entry point raises the DriverError itself (``mm.pending_driver_error``)."""

    def __init__(self, error: DriverError) -> None:
        super().__init__(errno.EFAULT, f"{os.strerror(errno.EFAULT)}: {error}")
        self.driver_error = error
