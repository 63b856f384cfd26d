"""What of the running kernel's configuration the model must be told about.

The model is deterministic and never looks at the machine; the host oracle does. Machines
of the same kernel differ in what the CPU offers: protection keys (PKU) change which key an
exec-only mapping gets, whether it can be read, and smaps' ``ProtectionKey:`` line.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any


@functools.cache
def host_has_pkeys() -> bool:
    """arch_pkeys_enabled() on this machine: smaps prints ``ProtectionKey:`` exactly then."""
    return "ProtectionKey:" in Path("/proc/self/smaps").read_text()


def _sysctl(name: str, default: int) -> int:
    try:
        return int(Path("/proc/sys/vm", name).read_text().split()[0])
    except (OSError, ValueError):
        return default


@functools.cache
def host_model_kwargs() -> dict[str, Any]:
    """Keyword arguments that make ``vmamodel.AddressSpace`` configured like this host."""
    return {
        "pkeys": host_has_pkeys(),
        "max_map_count": _sysctl("max_map_count", 65530),
        "overcommit_memory": _sysctl("overcommit_memory", 0),
        "start_brk": _oracle_start_brk(),
    }


def _oracle_start_brk() -> int:
    """Where the oracle's child keeps its heap (the default arena's top; see heap_start)."""
    from vmamodel.host import heap_start

    return heap_start() or 0
