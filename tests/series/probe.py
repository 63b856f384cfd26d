"""A configurable probe driver for pipeline tests: records every hook call it receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vmamodel.file import File, FileOperations, Ref, VmOperations
from vmamodel.vma import Vma, VmAreaDesc


@dataclass
class Probe:
    """What the probe's hooks do and what they saw.

    ``prepare`` runs inside mmap_prepare after the ops are set (to add an action, change
    pgoff, ...). ``mapped_result`` is stored through the private Ref unless None;
    ``mapped_errno`` makes mapped fail (after storing, to show the store is discarded).
    """

    prepare: Callable[[VmAreaDesc], None] | None = None
    mapped_result: Any = None
    mapped_errno: int = 0
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class ProbeOps(VmOperations):
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def mapped(
        self, start: int, end: int, pgoff: int, file: File | None, private: Ref[Any]
    ) -> None:
        self.probe.calls.append(("mapped", start, end, pgoff, file, private.value))
        if self.probe.mapped_result is not None:
            private.value = self.probe.mapped_result
        if self.probe.mapped_errno:
            raise OSError(self.probe.mapped_errno, "probe mapped")

    def open(self, vma: Vma) -> None:
        self.probe.calls.append(("open", vma.id, vma.vm_start, vma.vm_end))

    def close(self, vma: Vma) -> None:
        self.probe.calls.append(("close", vma.id, vma.vm_start, vma.vm_end, vma.vm_private_data))


class ProbeFops(FileOperations):
    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.ops = ProbeOps(probe)

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        self.probe.calls.append(("mmap_prepare", desc.start, desc.end, desc.pgoff))
        desc.vm_ops = self.ops
        if self.probe.prepare is not None:
            self.probe.prepare(desc)


def probe_file(probe: Probe, path: str = "/dev/probe") -> File:
    return File(path=path, size=1 << 30, f_op=ProbeFops(probe), kind="probe")
