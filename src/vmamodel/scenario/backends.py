"""The two sides a scenario runs on: the model and the host kernel, and their files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import vmamodel
from vmamodel import memfd_create, open_file
from vmamodel.drivers.devices import (
    Devices,
    FactoryError,
    is_device_path,
    is_factory_path,
    ledger_summary,
    load_factory,
    open_factory,
)
from vmamodel.drivers.stacked import open_stacked
from vmamodel.file import File as FileType
from vmamodel.host import real_file
from vmamodel.host.arena import ARENA_BASE, ARENA_SIZE
from vmamodel.inject import Injector
from vmamodel.space import MmSpace

if TYPE_CHECKING:
    from vmamodel.file import File


# Backends


class Backend(Protocol):
    """Makes the address spaces and files of one side of a comparison."""

    name: str

    def new_space(self) -> MmSpace: ...
    def adopt(self, space: MmSpace) -> None:
        """Take charge of a space made by fork() (to close it with the backend)."""
    def memfd_create(self, name: str, size: int) -> File: ...
    def open_file(self, path: str, flags: int, size: int) -> File: ...
    def close(self) -> None: ...
    def ledger_lines(self) -> list[str]:
        """One line per ledger of the built-in drivers the run opened (model only)."""
    def findings(self) -> list[str]:
        """What ``#! check: lifecycle`` found, one line each (model only)."""


def _new_devices() -> Any:

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
    #: ``vmamodel.check``'s lifecycle monitor (``#! check: lifecycle``), or None.
    monitor: Any = None
    #: The injector every address space of the run shares (``#! inject:``), or None.
    injector: Any = None
    spaces: int = 0

    def enable_check(self, inject: tuple[str, int] | None, check: bool) -> None:
        """Watch the run with the lifecycle detectors and/or fail one injected point."""
        if check:
            # vmamodel.check replays scenarios through this package: import it only here.
            from vmamodel.check.detectors import Monitor, watching_injector

            self.monitor = Monitor()
            self.injector = watching_injector(self.monitor, inject)
            return
        self.injector = Injector()
        if inject is not None:
            self.injector.add(inject[0], inject[1])

    def new_space(self) -> MmSpace:

        kwargs = dict(self.config)
        if self.profile is not None:
            kwargs["profile"] = self.profile
        space: MmSpace = vmamodel.AddressSpace(**kwargs)
        self.adopt(space)
        return space

    def adopt(self, space: MmSpace) -> None:
        """Share the run's injector and monitor with a new address space (a fork's too)."""
        if self.injector is not None:
            space.injector = self.injector  # type: ignore[attr-defined]
        if self.monitor is not None:
            self.monitor.attach(f"space{self.spaces}", space)
        self.spaces += 1

    def findings(self) -> list[str]:
        """What the lifecycle monitor found, one line each."""
        if self.monitor is None:
            return []
        return [detection.line() for detection in self.monitor.finish()]

    def stacked(self, inner: File, fail_errno: int) -> File:
        """The file ``inner`` under a stacked legacy ``.mmap`` (vmamodel.drivers.stacked)."""
        if not isinstance(inner, FileType):
            raise TypeError("stacked() needs a file")
        return open_stacked(inner, fail_after=fail_errno)

    def memfd_create(self, name: str, size: int) -> File:

        return memfd_create(name, size)

    def open_file(self, path: str, flags: int, size: int) -> File:

        if is_device_path(path) or is_factory_path(path):
            try:
                device: File = self.devices.open(path, flags) if is_device_path(path) \
                    else open_factory(path)
            except FactoryError as err:
                raise RuntimeError(str(err)) from None
            if self.monitor is not None:
                state = None if is_device_path(path) else getattr(load_factory(path), "state",
                                                                  None)
                self.monitor.watch(device, state if callable(state) else None)
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

        return [ledger_summary(ledger) for ledger in self.devices.ledgers()]


@dataclass
class HostBackend:
    """The oracle: ``vmamodel.HostAddressSpace`` confined to an arena of the real kernel."""

    files: FileStore
    arena: tuple[int, int] = (ARENA_BASE, ARENA_SIZE)
    name: str = "host"
    _spaces: list[MmSpace] = field(default_factory=list)

    def new_space(self) -> MmSpace:
        space: MmSpace = vmamodel.HostAddressSpace(arena=self.arena)
        self._spaces.append(space)
        return space

    def adopt(self, space: MmSpace) -> None:
        self._spaces.append(space)

    def memfd_create(self, name: str, size: int) -> File:

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

        if is_device_path(path):
            raise RuntimeError(f"{path}: the built-in drivers exist only in the model")
        file: File = real_file(self.files.create(path, size), flags)
        return file

    def close(self) -> None:
        # Processes behind host spaces must not outlive the comparison.
        for space in self._spaces:
            space.exit()
        self._spaces.clear()

    def ledger_lines(self) -> list[str]:
        return []

    def findings(self) -> list[str]:
        return []


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
