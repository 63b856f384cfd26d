"""What the checker checks: a built-in device path, ``all`` of them, or ``module:factory``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmamodel.constants import O_RDONLY, O_RDWR
from vmamodel.drivers.devices import (
    OPENERS,
    Devices,
    FactoryError,
    is_device_path,
    is_factory_path,
    load_factory,
    open_factory,
)
from vmamodel.file import File

#: ``all``: every built-in device in its default form, and the pre-series AFS conversion.
EXTRA_FORMS = ("/afs/cell/file?form=buggy_prepare",)


class TargetError(ValueError):
    """A TARGET that names no driver (usage error)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A driver to check. ``spec`` is how a scenario opens it; ``flags`` its open mode."""

    spec: str
    flags: int = O_RDWR

    @property
    def builtin(self) -> bool:
        return self.spec.startswith("/")

    def open(self, devices: Devices | None = None) -> File:
        """A file of the driver: of ``devices`` (default: fresh ones) for a built-in device,
        a fresh one with fresh state from a factory."""
        if self.builtin:
            return (devices if devices is not None else Devices()).open(self.spec, self.flags)
        try:
            return open_factory(self.spec)
        except FactoryError as err:
            raise TargetError(str(err)) from None

    def state_fn(self) -> Callable[[File], Any] | None:
        """The factory's own ``state(file)``, if it has one."""
        if self.builtin:
            return None
        state = getattr(load_factory(self.spec), "state", None)
        return state if callable(state) else None


def resolve(target: str) -> list[Target]:
    """The targets a TARGET names; raises :class:`TargetError`."""
    if target == "all":
        return [_builtin(path) for path in (*sorted(OPENERS), *EXTRA_FORMS)]
    if target.startswith("/"):
        if not is_device_path(target):
            raise TargetError(f"{target}: not a built-in device (known: {', '.join(OPENERS)})")
        return [_builtin(target)]
    if not is_factory_path(target):
        raise TargetError(f"{target!r} is not a device path, 'all' or "
                          "'package.module:factory'")
    try:
        open_factory(target)  # once, so that a broken factory is a usage error
    except FactoryError as err:
        raise TargetError(str(err)) from None
    except Exception as err:
        raise TargetError(f"{target}: the factory raised {type(err).__name__}: {err}") from None
    return [Target(target)]


def _builtin(path: str) -> Target:
    """Open read-write if the device allows it, else read-only (hpet refuses FMODE_WRITE)."""
    try:
        Devices().open(path, O_RDWR)
    except OSError:
        return Target(path, O_RDONLY)
    return Target(path, O_RDWR)
