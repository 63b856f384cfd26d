"""vmamodel: an executable, kernel-exact model of the Linux VMA layer.

The public API is re-exported here; everything else is internal and named after the kernel
function it models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vmamodel.constants import *  # noqa: F403
from vmamodel.constants import VM
from vmamodel.driver_error import DriverError
from vmamodel.events import Event, Tracer
from vmamodel.file import (
    File,
    FileOperations,
    Ref,
    VmOperations,
    memfd_create,
    open_file,
)
from vmamodel.profiles import PROFILES, KernelProfile
from vmamodel.vma import VmAreaDesc, VmaView

if TYPE_CHECKING:
    from vmamodel.host import HostAddressSpace
    from vmamodel.mm import AddressSpace
    from vmamodel.parse import parse_maps, parse_smaps

__all__ = [
    "PROFILES",
    "VM",
    "AddressSpace",
    "DriverError",
    "Event",
    "File",
    "FileOperations",
    "HostAddressSpace",
    "KernelProfile",
    "Ref",
    "Tracer",
    "VmAreaDesc",
    "VmOperations",
    "VmaView",
    "memfd_create",
    "open_file",
    "parse_maps",
    "parse_smaps",
]

_LAZY = {
    "AddressSpace": "vmamodel.mm",
    "HostAddressSpace": "vmamodel.host",
    "parse_maps": "vmamodel.parse",
    "parse_smaps": "vmamodel.parse",
}


def __getattr__(name: str) -> Any:
    # The host oracle and the parser stay out of the import of the model core.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vmamodel' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
