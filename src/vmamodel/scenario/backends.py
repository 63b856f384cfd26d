"""The two sides a scenario runs on: the model and the host kernel, and their files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vmamodel.host.arena import ARENA_BASE, ARENA_SIZE

if TYPE_CHECKING:
    from vmamodel.file import File


# Backends


class Space(Protocol):
    """An address space of the model or of the host.

    The executor calls the system-call methods by the call's name (``mmap``, ``munmap``,
    ``mremap``...), so a backend that lacks one fails only the steps that use it.
    """

    def maps(self) -> str: ...
    def smaps(self) -> str: ...


class Backend(Protocol):
    """Makes the address spaces and files of one side of a comparison."""

    name: str

    def new_space(self) -> Space: ...
    def adopt(self, space: Space) -> None:
        """Take charge of a space made by fork() (to close it with the backend)."""
    def memfd_create(self, name: str, size: int) -> File: ...
    def open_file(self, path: str, flags: int, size: int) -> File: ...
    def close(self) -> None: ...


def _new_devices() -> Any:
    from vmamodel.drivers.devices import Devices

    return Devices()


@dataclass
class ModelBackend:
    """The model: ``vmamodel.AddressSpace`` under a kernel profile."""

    profile: str | None = None
    files: FileStore | None = None
    name: str = "model"
    #: Extra AddressSpace keywords, e.g. ``host_model_kwargs()`` when compared with a host.
    config: dict[str, Any] = field(default_factory=dict)
    #: The built-in driver devices (vmamodel.drivers.devices) that ``open`` reaches by path.
    devices: Any = field(default_factory=_new_devices)

    def new_space(self) -> Space:
        import vmamodel

        kwargs = dict(self.config)
        if self.profile is not None:
            kwargs["profile"] = self.profile
        space: Space = vmamodel.AddressSpace(**kwargs)
        return space

    def adopt(self, space: Space) -> None:
        return None

    def memfd_create(self, name: str, size: int) -> File:
        from vmamodel import memfd_create

        return memfd_create(name, size)

    def open_file(self, path: str, flags: int, size: int) -> File:
        from vmamodel import open_file
        from vmamodel.drivers.devices import is_device_path

        if is_device_path(path):
            device: File = self.devices.open(path, flags)
            return device
        if self.files is None:
            return open_file(os.path.join("/tmp/vmamodel", path), flags, size)
        real = self.files.create(path, size)
        st = os.stat(real)
        dev = (os.major(st.st_dev), os.minor(st.st_dev))
        return open_file(real, flags, size, dev=dev, ino=st.st_ino)

    def close(self) -> None:
        return None

    def ledger_lines(self) -> list[str]:
        """A summary of every ledger of the built-in drivers the run opened."""
        from vmamodel.drivers.devices import ledger_summary

        return [ledger_summary(ledger) for ledger in self.devices.ledgers()]


@dataclass
class HostBackend:
    """The oracle: ``vmamodel.HostAddressSpace`` confined to an arena of the real kernel."""

    files: FileStore
    arena: tuple[int, int] = (ARENA_BASE, ARENA_SIZE)
    name: str = "host"
    _spaces: list[Space] = field(default_factory=list)

    def new_space(self) -> Space:
        import vmamodel

        space: Space = vmamodel.HostAddressSpace(arena=self.arena)
        self._spaces.append(space)
        return space

    def adopt(self, space: Space) -> None:
        self._spaces.append(space)

    def memfd_create(self, name: str, size: int) -> File:
        from vmamodel import memfd_create

        file = memfd_create(name, size)
        # The oracle creates a memfd lazily, in the first process that maps it; a fork made
        # before that would leave parent and child each a memfd of its own, where the
        # scenario (and the model) have one file. Create it in the first process now, so
        # that every later fork inherits it.
        if self._spaces:
            main: Any = self._spaces[0]
            main.ftruncate(file, size)
        return file

    def open_file(self, path: str, flags: int, size: int) -> File:
        from vmamodel.drivers.devices import is_device_path
        from vmamodel.host import real_file

        if is_device_path(path):
            raise RuntimeError(f"{path}: the built-in drivers exist only in the model")
        file: File = real_file(self.files.create(path, size), flags)
        return file

    def close(self) -> None:
        # Processes behind host spaces must not outlive the comparison.
        for space in self._spaces:
            closer = getattr(space, "close", None)
            if callable(closer):
                closer()
        self._spaces.clear()


class FileStore:
    """Real files that ``open("name", ...)`` refers to: one per name, created at first use."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def create(self, name: str, size: int) -> str:
        path = self.directory / Path(name).name
        if not path.exists():
            with open(path, "wb") as handle:
                handle.truncate(size)
        return str(path)
