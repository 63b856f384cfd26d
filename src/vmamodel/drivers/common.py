"""Small helpers shared by the driver models."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from vmamodel.constants import O_ACCMODE, O_RDWR
from vmamodel.file import File, FileOperations
from vmamodel.hooks import oserror
from vmamodel.profiles import NotInProfile

if TYPE_CHECKING:
    from vmamodel.mm_types import MmStruct

T = TypeVar("T")

#: Driver forms: "new" is the series' mmap_prepare form (v4), "old" the legacy f_op->mmap.
FORMS = ("new", "old")


def fail(err: int, detail: str = "") -> OSError:
    """The OSError a driver hook raises for the kernel's ``return -err``."""
    return oserror(err, detail)


def state_of(file: File | None, cls: type[T]) -> T:
    """file->private_data as the driver's own type (a wrong file is a model bug)."""
    if file is None or not isinstance(file.private_data, cls):
        raise TypeError(f"{file!r} is not a {cls.__name__} file")
    return file.private_data


def require_mapped(mm: MmStruct, driver: str) -> None:
    """A driver whose vm_ops use ``mapped`` does not build on a kernel without it (6.18)."""
    if not mm.profile.has_mapped:
        raise NotInProfile(f"{driver}: vm_operations_struct has no 'mapped' in {mm.profile.name}")


def check_form(form: str) -> None:
    if form not in FORMS:
        raise ValueError(f"unknown driver form {form!r}; choose from {FORMS}")


def char_device(
    path: str,
    f_op: FileOperations,
    private: object,
    *,
    flags: int = O_RDWR,
    dev: tuple[int, int] = (0, 0),
    ino: int = 0,
    kind: str = "chardev",
) -> File:
    """A struct file of a character device (or sysfs node) whose f_op is the driver's."""
    return File(
        path=path,
        size=0,
        flags=flags,
        f_op=f_op,
        dev=dev,
        ino=ino,
        private_data=private,
        kind=kind,
    )


def wants_write(flags: int) -> bool:
    """FMODE_WRITE for open(2) flags."""
    return (flags & O_ACCMODE) != 0

