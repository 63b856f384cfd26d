"""A correct counting driver and variants of it, each with one planted bug of a different
class. The checker gets only the factories (``open_<name>``); it knows nothing of the bugs.

The correct driver counts one reference per VMA object: ``mapped`` (a new VMA) and ``open`` (a
VMA made from another: split piece, fork copy, mremap copy) take one, ``close`` drops one.
``mmap_prepare`` only describes the mapping. ``mapped`` also hands out a per-mapping handle
through vm_private_data, which ``close`` does not depend on. No ledger: the state is a plain
dataclass.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vmamodel.constants import PAGE_SIZE
from vmamodel.file import File, FileOperations, Ref, VmOperations

if TYPE_CHECKING:
    from vmamodel.vma import Vma, VmAreaDesc


@dataclass(eq=False)
class Device:
    refs: int = 0


@dataclass(frozen=True)
class Handle:
    device: Device
    start: int


def device_of(file: File | None) -> Device:
    assert file is not None and isinstance(file.private_data, Device)
    return file.private_data


class CorrectVmOps(VmOperations):
    def mapped(self, start: int, end: int, pgoff: int, file: File | None,
               private: Ref[Any]) -> None:
        device = device_of(file)
        device.refs += 1
        private.value = Handle(device, start)

    def open(self, vma: Vma) -> None:
        device_of(vma.vm_file).refs += 1

    def close(self, vma: Vma) -> None:
        device_of(vma.vm_file).refs -= 1


class CorrectFops(FileOperations):
    vm_ops: VmOperations = CorrectVmOps()

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        desc.vm_ops = self.vm_ops


def _file(f_op: FileOperations) -> File:
    return File("/dev/planted", f_op=f_op, private_data=Device(), kind="chardev")


def open_correct() -> File:
    return _file(CorrectFops())


# 1. The reference is taken in mmap_prepare (the naive conversion from .mmap).
class RefInPrepareVmOps(VmOperations):
    def open(self, vma: Vma) -> None:
        device_of(vma.vm_file).refs += 1

    def close(self, vma: Vma) -> None:
        device_of(vma.vm_file).refs -= 1


class RefInPrepareFops(FileOperations):
    vm_ops = RefInPrepareVmOps()

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        device_of(desc.file).refs += 1
        desc.vm_ops = self.vm_ops


def open_ref_in_prepare() -> File:
    return _file(RefInPrepareFops())


# 2. open takes no reference: split pieces and fork copies are not counted.
class OpenMissingRefVmOps(CorrectVmOps):
    def open(self, vma: Vma) -> None:
        pass


class OpenMissingRefFops(CorrectFops):
    vm_ops = OpenMissingRefVmOps()


def open_open_missing_ref() -> File:
    return _file(OpenMissingRefFops())


# 3. No close at all: nothing gives the references back.
class ForgotCloseVmOps(CorrectVmOps):
    close = None


class ForgotCloseFops(CorrectFops):
    vm_ops = ForgotCloseVmOps()


def open_forgot_close() -> File:
    return _file(ForgotCloseFops())


# 4. close puts twice.
class DoubleReleaseVmOps(CorrectVmOps):
    def close(self, vma: Vma) -> None:
        device = device_of(vma.vm_file)
        device.refs -= 1
        device.refs -= 1


class DoubleReleaseFops(CorrectFops):
    vm_ops = DoubleReleaseVmOps()


def open_double_release() -> File:
    return _file(DoubleReleaseFops())


# 5. mapped looks the offset up in a table and raises KeyError for any other offset.
WINDOWS = {0: "window 0"}


class KeyErrorVmOps(CorrectVmOps):
    def mapped(self, start: int, end: int, pgoff: int, file: File | None,
               private: Ref[Any]) -> None:
        private.value = WINDOWS[pgoff]
        device_of(file).refs += 1


class KeyErrorFops(CorrectFops):
    vm_ops = KeyErrorVmOps()


def open_key_error() -> File:
    return _file(KeyErrorFops())


# 6. mapped fails (a range past the device) before counting, but close still puts.
class MappedFailsVmOps(CorrectVmOps):
    def mapped(self, start: int, end: int, pgoff: int, file: File | None,
               private: Ref[Any]) -> None:
        if pgoff >= 16:
            raise OSError(errno.EINVAL, "past the device")
        super().mapped(start, end, pgoff, file, private)


class MappedFailsFops(CorrectFops):
    vm_ops = MappedFailsVmOps()


def open_mapped_fails() -> File:
    return _file(MappedFailsFops())


# 7. close finds its device through the handle mapped stored in vm_private_data, which a
#    range merging into the VMA replaces.
class PrivateLostVmOps(CorrectVmOps):
    def close(self, vma: Vma) -> None:
        handle: Handle = vma.vm_private_data
        handle.device.refs -= 1


class PrivateLostFops(CorrectFops):
    vm_ops = PrivateLostVmOps()


def open_private_lost() -> File:
    return _file(PrivateLostFops())


# 8. The device is remembered in a module-level variable, shared by every file: close puts
#    the device of whichever file was mapped last.
CURRENT: list[Device] = []


class GlobalDeviceVmOps(CorrectVmOps):
    def close(self, vma: Vma) -> None:
        CURRENT[-1].refs -= 1


class GlobalDeviceFops(CorrectFops):
    vm_ops = GlobalDeviceVmOps()

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        CURRENT[:] = [device_of(desc.file)]
        desc.vm_ops = self.vm_ops


def open_global_device() -> File:
    return _file(GlobalDeviceFops())


# 9. The mremap hook counts the moved VMA again, although the kernel opened the copy.
class MremapCountsVmOps(CorrectVmOps):
    def mremap(self, vma: Vma) -> None:
        device_of(vma.vm_file).refs += 1


class MremapCountsFops(CorrectFops):
    vm_ops = MremapCountsVmOps()


def open_mremap_counts() -> File:
    return _file(MremapCountsFops())


# 10. mmap_prepare edits the range, which the kernel ignores (and warns about).
class EditsRangeFops(CorrectFops):
    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        desc.end += PAGE_SIZE
        desc.vm_ops = self.vm_ops


def open_edits_range() -> File:
    return _file(EditsRangeFops())


# 11. A legacy .mmap whose error path forgets the reference it took.
class LegacyVmOps(RefInPrepareVmOps):
    pass


class LegacyErrorPathFops(FileOperations):
    vm_ops = LegacyVmOps()

    def mmap(self, file: File, vma: Vma) -> None:
        device = device_of(file)
        device.refs += 1
        if vma.vm_pgoff >= 16:
            raise OSError(errno.EINVAL, "past the device")  # forgets device.refs -= 1
        vma.vm_ops = self.vm_ops


def open_legacy_error_path() -> File:
    return _file(LegacyErrorPathFops())


# 12. may_split takes the reference for the piece to come; the split can still fail.
class MaySplitVmOps(CorrectVmOps):
    def may_split(self, vma: Vma, addr: int) -> None:
        device_of(vma.vm_file).refs += 1

    def open(self, vma: Vma) -> None:
        pass  # may_split already counted the new piece


class MaySplitFops(CorrectFops):
    vm_ops = MaySplitVmOps()


def open_may_split() -> File:
    return _file(MaySplitFops())


PLANTED = {
    "ref_in_prepare": open_ref_in_prepare,
    "open_missing_ref": open_open_missing_ref,
    "forgot_close": open_forgot_close,
    "double_release": open_double_release,
    "key_error": open_key_error,
    "mapped_fails": open_mapped_fails,
    "private_lost": open_private_lost,
    "global_device": open_global_device,
    "mremap_counts": open_mremap_counts,
    "edits_range": open_edits_range,
    "legacy_error_path": open_legacy_error_path,
    "may_split": open_may_split,
}


# A driver whose state is not in private_data: the factory says where it is with ``state``.
class ExtraStateVmOps(VmOperations):
    def mapped(self, start: int, end: int, pgoff: int, file: File | None,
               private: Ref[Any]) -> None:
        assert file is not None
        file.extra["device"].refs += 1  # and no close: a leak


class ExtraStateFops(FileOperations):
    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        desc.vm_ops = ExtraStateVmOps()


def open_extra_state() -> File:
    return File("/dev/extra", f_op=ExtraStateFops(), extra={"device": Device()})


def _extra_state(file: File) -> Device:
    device: Device = file.extra["device"]
    return device


open_extra_state.state = _extra_state  # type: ignore[attr-defined]
