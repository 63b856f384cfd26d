"""What the checker checks: a built-in device path, ``all`` of them, or ``module:factory``."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmamodel.constants import O_RDONLY, O_RDWR
from vmamodel.drivers.devices import OPENERS, Devices, is_device_path
from vmamodel.file import File

FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
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

    def open(self) -> File:
        """A fresh file with fresh device state."""
        if self.builtin:
            return Devices().open(self.spec, self.flags)
        file = load_factory(self.spec)()
        if not isinstance(file, File):
            raise TargetError(f"{self.spec}: the factory returned {type(file).__name__}, "
                              "not a vmamodel File")
        return file

    def state_fn(self) -> Callable[[File], Any] | None:
        """The factory's own ``state(file)``, if it has one."""
        if self.builtin:
            return None
        state = getattr(load_factory(self.spec), "state", None)
        return state if callable(state) else None


def load_factory(spec: str) -> Callable[[], Any]:
    """Import ``package.module:factory`` (the current directory first, like ``python -m``)."""
    if not FACTORY_RE.match(spec):
        raise TargetError(f"{spec!r} is not a device path, 'all' or 'package.module:factory'")
    module_name, attr = spec.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise TargetError(f"{spec}: cannot import {module_name!r}: {err}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TargetError(f"{spec}: {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TargetError(f"{spec}: {attr!r} is not callable")
    factory: Callable[[], Any] = obj
    return factory


def resolve(target: str) -> list[Target]:
    """The targets a TARGET names; raises :class:`TargetError`."""
    if target == "all":
        return [_builtin(path) for path in (*sorted(OPENERS), *EXTRA_FORMS)]
    if target.startswith("/"):
        if not is_device_path(target):
            raise TargetError(f"{target}: not a built-in device (known: {', '.join(OPENERS)})")
        return [_builtin(target)]
    load_factory(target)
    return [Target(target)]


def _builtin(path: str) -> Target:
    """Open read-write if the device allows it, else read-only (hpet refuses FMODE_WRITE)."""
    try:
        Devices().open(path, O_RDWR)
    except OSError:
        return Target(path, O_RDONLY)
    return Target(path, O_RDWR)
