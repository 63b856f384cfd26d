"""The aio ring of io_setup(2) (fs/aio.c): a shared mapping of an unlinked ``[aio]`` file.

ioctx_alloc doubles the requested events (at least 4 per possible CPU first), EINVAL when
that passes 0x10000000 bytes of io_events or no events were asked for, EAGAIN above
fs.aio-max-nr; aio_setup_ring sizes the ring (a 32-byte header and 32 bytes an event, two
spare events) in whole pages and maps it MAP_SHARED, read-write, where the kernel chooses.
aio_ring_mmap gives the VMA VM_DONTEXPAND (so it never merges) and aio_ring_vm_ops, whose
``mremap`` moves the context's id with the ring; the aio mount is noexec (no ``me``).
The context id that io_setup returns is the ring's address. io_destroy unmaps the ring.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, cast

from vmamodel.constants import (
    MAP_SHARED,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    O_RDWR,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    VM_DONTEXPAND,
)
from vmamodel.file import File, FileOperations, VmOperations
from vmamodel.hooks import oserror
from vmamodel.mmap import do_mmap
from vmamodel.mremap import do_mremap
from vmamodel.munmap import do_munmap

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma

AIO_RING_HEADER = 32
IO_EVENT_SIZE = 32
#: The device of the aio pseudo filesystem on the host (its inodes are anonymous).
AIO_DEV = (0, 19)
DEFAULT_AIO_MAX_NR = 65536


class AioContext:
    """struct kioctx: the ring's file, size and where it is mapped (the context id)."""

    __slots__ = ("file", "mmap_base", "mmap_size", "nr_events")

    def __init__(self, file: File, mmap_size: int, nr_events: int) -> None:
        self.file = file
        self.mmap_size = mmap_size
        self.nr_events = nr_events
        self.mmap_base = 0


class AioRingVmOperations(VmOperations):
    """aio_ring_vm_ops: ``mremap`` follows the ring (aio_ring_mremap)."""

    def __init__(self, ctx: AioContext) -> None:
        self.ctx = ctx

    def mremap(self, vma: Vma) -> None:
        """aio_ring_mremap(): the context id becomes the new address."""
        self.ctx.mmap_base = vma.vm_start
        if vma.vm_mm is not None:
            table = cast("AddressSpace", vma.vm_mm).aio_contexts
            for key, ctx in list(table.items()):
                if ctx is self.ctx:
                    del table[key]
            table[vma.vm_start] = self.ctx


class AioRingFileOperations(FileOperations):
    """aio_ring_fops: aio_ring_mmap (VM_DONTEXPAND, the ring's vm_ops)."""

    def __init__(self, ctx_holder: list[AioContext]) -> None:
        self._ctx = ctx_holder
        self.mmap = self._aio_ring_mmap

    def _aio_ring_mmap(self, file: File, vma: Vma) -> None:
        vma.vm_flags |= VM_DONTEXPAND
        vma.vm_ops = AioRingVmOperations(self._ctx[0])


def ioctx_alloc(mm: AddressSpace, nr_events: int) -> AioContext:
    """ioctx_alloc() and aio_setup_ring() up to the mapping."""
    max_reqs = nr_events
    nr_events = max(nr_events, mm.possible_cpus * 4) * 2
    if nr_events > 0x10000000 // IO_EVENT_SIZE:
        raise oserror(errno.EINVAL, "io_setup: too many events")
    if not nr_events or max_reqs > mm.aio_max_nr:
        raise oserror(errno.EAGAIN, "io_setup: over fs.aio-max-nr")
    size = AIO_RING_HEADER + IO_EVENT_SIZE * (nr_events + 2)
    pages = (size + PAGE_SIZE - 1) // PAGE_SIZE
    holder: list[AioContext] = []
    file = File(path="/[aio]", size=pages * PAGE_SIZE, flags=O_RDWR,
                f_op=AioRingFileOperations(holder), dev=AIO_DEV, ino=next(mm.aio_inos),
                deleted=True, noexec=True, kind="aio")
    ctx = AioContext(file, pages * PAGE_SIZE, nr_events)
    holder.append(ctx)
    return ctx


def sys_io_setup(mm: AddressSpace, nr_events: int, move_to: int | None = None) -> int:
    """io_setup(2): EINVAL for no events; the ring mapped where the kernel chooses. Returns
    the context id (the ring's address). ``move_to``: then mremap the ring there (what a
    program may do, and what the host oracle does to keep it in its arena)."""
    nr_events &= 0xFFFFFFFF
    if nr_events == 0:
        raise oserror(errno.EINVAL, "io_setup: no events")
    ctx = ioctx_alloc(mm, nr_events)
    addr, _ = do_mmap(mm, 0, ctx.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, ctx.file, 0)
    ctx.mmap_base = addr
    mm.aio_contexts[addr] = ctx
    if move_to is not None:
        do_mremap(mm, addr, ctx.mmap_size, ctx.mmap_size, MREMAP_MAYMOVE | MREMAP_FIXED, move_to)
    return ctx.mmap_base


def sys_io_destroy(mm: AddressSpace, ctx_id: int) -> None:
    """io_destroy(2): EINVAL for an unknown context; the ring is unmapped (kill_ioctx)."""
    ctx = mm.aio_contexts.pop(ctx_id, None)
    if ctx is None:
        raise oserror(errno.EINVAL, f"io_destroy: no context {ctx_id:#x}")
    do_munmap(mm, ctx.mmap_base, ctx.mmap_size)
