"""A planted model bug, for testing the fuzzer only: never set it outside tests.

The environment variable ``VMAMODEL_FUZZ_PLANTED_BUG=readonly-merge`` makes every fuzz worker
(and any process that calls :func:`install`) wrap ``AddressSpace.mmap`` and
``AddressSpace.mprotect`` so that a range they make read-only (not writable), private and
anonymous never shares a VMA with what lies on its left: when a merge extended the left
neighbour over it, the wrapper splits it off again (the kernel's can_vma_merge_after() has no
such rule). Two adjacent read-only private anonymous mmaps are then two VMAs in the model and
one in the kernel: the fuzzer must find that and shrink it to a couple of calls.

The switch is read once per shard by the fuzz task (vmamodel.fuzz.shard), never by the core:
the model's hot path is untouched unless a test installs the wrapper. It sets the wrappers
on the AddressSpace class, which is plain Python in both builds (the entry points it wraps
are vmamodel.syscalls.SyscallEntry's, compiled in the mypyc build), so it works the same on
the pure and on the compiled model (a patch of a compiled module's function would not be
seen by the compiled callers).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from vmamodel.constants import VM_READ, VM_SHARED, VM_WRITE
from vmamodel.mm import AddressSpace
from vmamodel.vma import split_vma

ENV = "VMAMODEL_FUZZ_PLANTED_BUG"
BUGS = ("readonly-merge",)
_MMAP: Callable[..., int] = AddressSpace.mmap
_MPROTECT: Callable[..., None] = AddressSpace.mprotect


def _unmerge_readonly(mm: AddressSpace, addr: int) -> None:
    """Split a read-only private anonymous VMA at ``addr`` when a merge put it there."""
    vma = mm.tree.lookup(addr)
    if vma is None or vma.vm_start == addr or not vma.is_anonymous():
        return
    if vma.vm_flags & (VM_READ | VM_WRITE | VM_SHARED) != VM_READ:
        return
    with contextlib.suppress(OSError):  # at max_map_count: the merge stays
        split_vma(mm, vma, addr, new_below=False)


def _planted_mmap(self: AddressSpace, *args: Any, **kwargs: Any) -> int:
    """AddressSpace.mmap() plus the planted rule."""
    addr = _MMAP(self, *args, **kwargs)
    _unmerge_readonly(self, addr)
    return addr


def _planted_mprotect(self: AddressSpace, addr: int, *args: Any, **kwargs: Any) -> None:
    """AddressSpace.mprotect() plus the planted rule."""
    _MPROTECT(self, addr, *args, **kwargs)
    _unmerge_readonly(self, addr)


def install(name: str) -> None:
    """Plant bug ``name`` in this process (see BUGS)."""
    if name not in BUGS:
        raise ValueError(f"{ENV}={name!r}: no such planted bug (known: {', '.join(BUGS)})")
    AddressSpace.mmap = _planted_mmap  # type: ignore[method-assign, assignment]
    AddressSpace.mprotect = _planted_mprotect  # type: ignore[method-assign, assignment]


def uninstall() -> None:
    """Remove the bug: AddressSpace inherits mmap and mprotect from SyscallEntry again (a
    copy set on the class would hide that the entries are SyscallEntry's)."""
    for name in ("mmap", "mprotect"):
        if name in vars(AddressSpace):
            delattr(AddressSpace, name)


def install_from_env() -> None:
    """install() the bug named by VMAMODEL_FUZZ_PLANTED_BUG, if set."""
    name = os.environ.get(ENV)
    if name:
        install(name)
