"""Shared helpers for the core rule tests: every test runs on the model and on the host."""

from __future__ import annotations

from typing import Any

from vmamodel import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    PROT_READ,
    PROT_WRITE,
)
from vmamodel.host.arena import ARENA_BASE as ARENA
from vmamodel.host.arena import at as at  # re-exported: the tests import it from here

P = 4096
RW = PROT_READ | PROT_WRITE
RO = PROT_READ
ANON = MAP_PRIVATE | MAP_ANONYMOUS
NOREPLACE = ANON | MAP_FIXED_NOREPLACE
FIXED = ANON | MAP_FIXED
SHANON = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE


def layout(mm: object) -> list[tuple[int, int, str]]:
    """(first page, last page + 1, perms) of each VMA, relative to the arena."""
    out = []
    for line in mm.maps().splitlines():  # type: ignore[attr-defined]
        rng, perms = line.split()[:2]
        start, end = (int(x, 16) for x in rng.split("-"))
        out.append(((start - ARENA) // P, (end - ARENA) // P, perms))
    return out


def flags_of(mm: object) -> list[str]:
    """The VmFlags line of each VMA, in order."""
    return [
        line.split(":", 1)[1].strip()
        for line in mm.smaps().splitlines()  # type: ignore[attr-defined]
        if line.startswith("VmFlags:")
    ]


def offsets(mm: object) -> list[int]:
    """The maps offset column of each VMA, in pages."""
    return [int(line.split()[2], 16) // P for line in mm.maps().splitlines()]  # type: ignore[attr-defined]


def vm_stats(mm: Any, backend: Any) -> tuple[int, int, int]:
    """(locked_vm, total_vm, data_vm) in pages: /proc/PID/status VmLck, VmSize, VmData on
    the host (the child's own memory is subtracted by the caller)."""
    if not backend.is_host:
        return mm.locked_vm, mm.total_vm, mm.data_vm
    fields = {}
    with open(f"/proc/{mm.pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = int(value.split()[0]) // 4 if value.strip().endswith("kB") else 0
    return fields["VmLck"], fields["VmSize"], fields["VmData"]
