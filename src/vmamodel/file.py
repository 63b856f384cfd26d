"""Files and the hook tables a driver fills in: file_operations and vm_operations_struct.

A hook is present when the subclass defines it and absent when it is left as ``None``, the way
the kernel tests a function pointer. A hook fails by raising ``OSError(errno, ...)`` (the
kernel's ``return -errno``). ``mapped``'s output parameter - the kernel's ``void **`` for the
new vm_private_data - is a :class:`Ref`: assign ``private.value``.

Example, a driver that counts live mappings::

    >>> import errno
    >>> import vmamodel as v
    >>> class CounterOps(VmOperations):
    ...     def mapped(self, start, end, pgoff, file, private):
    ...         file.private_data["maps"] += 1
    ...         private.value = f"mapping at {start:#x}"   # becomes vm_private_data
    ...     def close(self, vma):
    ...         vma.vm_file.private_data["maps"] -= 1
    >>> class CounterFops(FileOperations):
    ...     def mmap_prepare(self, desc):
    ...         if desc.pgoff:
    ...             raise OSError(errno.EINVAL, "offset must be 0")   # a hook fails so
    ...         desc.vm_ops = CounterOps()
    >>> counter = File("/dev/counter", f_op=CounterFops(), private_data={"maps": 0})
    >>> mm = v.AddressSpace()
    >>> addr = mm.mmap(0x100000000000, 4096, v.PROT_READ, v.MAP_SHARED, counter, 0)
    >>> counter.private_data, mm.find_vma(addr).vm_private_data
    ({'maps': 1}, 'mapping at 0x100000000000')
    >>> mm.mmap(0x100000010000, 4096, v.PROT_READ, v.MAP_SHARED, counter, 4096)
    Traceback (most recent call last):
    ...
    OSError: [Errno 22] offset must be 0
    >>> mm.munmap(addr, 4096); counter.private_data
    {'maps': 0}
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from vmamodel.constants import O_ACCMODE, O_RDONLY, O_RDWR, O_WRONLY

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc

T = TypeVar("T")

SHMEM_DEV = (0, 1)


class Ref(Generic[T]):
    """An out-parameter: the kernel's ``void **``. Set ``.value`` to change what it points at."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Ref({self.value!r})"


class VmOperations:
    """vm_operations_struct (include/linux/mm.h). Override the hooks a driver needs.

    - ``open(vma)``: a new VMA was made from an existing one (split piece, fork copy, mremap
      copy). Never called for the first mapping.
    - ``close(vma)``: the VMA is being destroyed (munmap, exit, failed mmap cleanup).
      A VMA whose ops have ``close`` is never removed by a merge.
    - ``mapped(start, end, pgoff, file, private)``: (v4 and later) a new VMA of an
      ``mmap_prepare`` file was established; ``private`` is a :class:`Ref` holding the current
      vm_private_data, set ``private.value`` to replace it. Raise ``OSError`` to fail the mmap
      (the VMA is then unmapped, so ``close`` runs).
    - ``may_split(vma, addr)``: raise to refuse a split at ``addr``.
    - ``mremap(vma)``: the VMA was moved by mremap; raise to undo the move.
    - ``mprotect(vma, start, end, newflags)``: raise to refuse an mprotect.
    - ``name(vma)``: the name shown in /proc/PID/maps, or None.

    A hook fails only by raising ``OSError`` with an errno. Anything else it raises (a driver
    bug), or a field left with a value of the wrong type, rolls the call back as an EFAULT
    would and the call raises ``vmamodel.DriverError``; ``open`` and ``close`` cannot fail, so
    the call completes before DriverError is raised (docs/drivers.md, section 2.4).
    """

    open: Callable[[Vma], None] | None = None
    close: Callable[[Vma], None] | None = None
    mapped: Callable[[int, int, int, File | None, Ref[Any]], None] | None = None
    may_split: Callable[[Vma, int], None] | None = None
    mremap: Callable[[Vma], None] | None = None
    mprotect: Callable[[Vma, int, int, int], None] | None = None
    name: Callable[[Vma], str | None] | None = None
    # Presence makes a shared writable mapping want write-notify; behaviour is not modelled.
    page_mkwrite: Callable[..., Any] | None = None
    pfn_mkwrite: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return type(self).__name__


class DummyVmOperations(VmOperations):
    """vma_dummy_vm_ops: what a file VMA has when its driver set none, and after close."""


#: One shared instance, as in the kernel, so identity comparisons work.
VMA_DUMMY_VM_OPS = DummyVmOperations()


class FileOperations:
    """The mmap-related part of file_operations (include/linux/fs.h).

    - ``mmap(file, vma)``: the legacy hook, called on a VMA that is not yet in the tree.
    - ``mmap_prepare(desc)``: the new hook, called on a :class:`VmAreaDesc` before any VMA
      exists and before the merge attempt. It must not take references: see ``mapped``.
    - ``get_unmapped_area(...)``: a file's own placement (room for drivers; optional).

    Raise ``OSError`` with an errno to fail the mmap. Anything else raised, or a desc/VMA
    field left with a value of the wrong type (checked right after the hook), rolls the mmap
    back as an EFAULT would and raises ``vmamodel.DriverError`` (docs/drivers.md, 2.4).
    """

    mmap: Callable[[File, Vma], None] | None = None
    mmap_prepare: Callable[[VmAreaDesc], None] | None = None
    get_unmapped_area: Callable[..., int] | None = None

    def __repr__(self) -> str:
        return type(self).__name__


class ShmemVmOperations(VmOperations):
    """shmem_vm_ops / shmem_anon_vm_ops: fault handling only, no open/close."""


SHMEM_VM_OPS = ShmemVmOperations()


class ShmemFileOperations(FileOperations):
    """shmem_file_operations: shmem_mmap_prepare sets the shmem vm_ops."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        desc.vm_ops = SHMEM_VM_OPS


class GenericFileOperations(FileOperations):
    """A disk filesystem's file (generic_file_mmap_prepare): page-cache vm_ops, no open/close."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        desc.vm_ops = GENERIC_FILE_VM_OPS


class GenericFileVmOperations(VmOperations):
    """generic_file_vm_ops: has page_mkwrite, so shared writable mappings want write-notify."""

    def page_mkwrite(self, *args: Any) -> None:  # pragma: no cover - not modelled
        return None


GENERIC_FILE_VM_OPS = GenericFileVmOperations()


@dataclass(eq=False)
class File:
    """struct file: an open file description. Identity (``is``) is what merging compares.

    ``path`` is what /proc/PID/maps prints (``deleted`` adds " (deleted)"). ``flags`` holds the
    open mode (O_RDONLY, O_WRONLY, O_RDWR). ``size`` is the inode size in bytes.
    """

    path: str
    size: int = 0
    flags: int = O_RDWR
    f_op: FileOperations | None = None
    dev: tuple[int, int] = (0, 0)
    ino: int = 0
    deleted: bool = False
    shmem: bool = False
    noexec: bool = False
    append_only: bool = False
    #: a memfd with F_SEAL_WRITE / F_SEAL_FUTURE_WRITE
    write_sealed: bool = False
    future_write_sealed: bool = False
    #: driver state (file->private_data)
    private_data: Any = None
    #: ``mm.mmap`` and the host oracle use this to recreate the file on the kernel side.
    kind: str = "regular"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def readable(self) -> bool:
        """FMODE_READ."""
        return (self.flags & O_ACCMODE) in (O_RDONLY, O_RDWR)

    @property
    def writable(self) -> bool:
        """FMODE_WRITE."""
        return (self.flags & O_ACCMODE) in (O_WRONLY, O_RDWR)

    def display_name(self) -> str:
        """The d_path() text: the path with " (deleted)" for an unlinked file."""
        return self.path + " (deleted)" if self.deleted else self.path

    def __repr__(self) -> str:
        return f"File({self.display_name()!r})"


def _default_ino(name: str) -> int:
    # Deterministic stand-in for get_next_ino(); inode numbers differ from the host's anyway.
    return 1000 + zlib.crc32(name.encode()) % 1_000_000


def memfd_create(name: str, size: int = 0, *, ino: int | None = None) -> File:
    """memfd_create(2) + ftruncate(2): a shmem file shown as ``/memfd:NAME (deleted)``."""
    return File(
        path=f"/memfd:{name}",
        size=size,
        flags=O_RDWR,
        f_op=ShmemFileOperations(),
        dev=SHMEM_DEV,
        ino=_default_ino(name) if ino is None else ino,
        deleted=True,
        shmem=True,
        kind="memfd",
        extra={"name": name},
    )


def open_file(
    path: str,
    flags: int = O_RDWR,
    size: int = 0,
    *,
    dev: tuple[int, int] = (8, 1),
    ino: int | None = None,
    f_op: FileOperations | None = None,
    noexec: bool = False,
) -> File:
    """open(2) of a regular file on a disk filesystem (generic_file_mmap_prepare)."""
    return File(
        path=path,
        size=size,
        flags=flags,
        f_op=GenericFileOperations() if f_op is None else f_op,
        dev=dev,
        ino=_default_ino(path) if ino is None else ino,
        noexec=noexec,
        kind="regular",
    )


def shmem_zero_file(ino: int) -> File:
    """shmem_zero_setup(): the private shmem file behind a shared anonymous mapping."""
    return File(
        path="/dev/zero",
        size=0,
        flags=O_RDWR,
        f_op=ShmemFileOperations(),
        dev=SHMEM_DEV,
        ino=ino,
        deleted=True,
        shmem=True,
        kind="shmem_zero",
    )


def file_has_mmap(file: File) -> bool:
    """can_mmap_file(): exactly one of .mmap and .mmap_prepare is needed."""
    f_op = file.f_op
    if f_op is None:
        return False
    return (f_op.mmap is not None) != (f_op.mmap_prepare is not None)
