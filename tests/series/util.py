"""Helpers shared by the seed tests."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from core.util import at
from vmamodel import AddressSpace
from vmamodel.constants import (
    MAP_FIXED,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    VM,
)
from vmamodel.events import ActionStep, Event, HookCall
from vmamodel.file import File
from vmamodel.host.arena import ARENA_BASE as BASE
from vmamodel.mmap_action import MmapAction
from vmamodel.vma import VmAreaDesc

P = PAGE_SIZE
RW = PROT_READ | PROT_WRITE
RO = PROT_READ
SHARED_FIXED = MAP_SHARED | MAP_FIXED
PRIVATE_FIXED = MAP_PRIVATE | MAP_FIXED


def mmap_at(
    mm: AddressSpace, page: int, pages: int, file: File, *, prot: int = RW,
    flags: int = SHARED_FIXED, pgoff: int | None = None,
) -> int:
    """mmap ``pages`` pages of ``file`` at test page ``page`` (file offset = ``pgoff``,
    by default the same as ``page`` so that neighbours can merge)."""
    offset = (page if pgoff is None else pgoff) * P
    return mm.mmap(at(page), pages * P, prot, flags, file, offset)


def raises_errno(err: int) -> Any:
    """pytest.raises(OSError) that also checks the errno."""
    return pytest.raises(OSError, match=f"^\\[Errno {err}\\]")


def errno_of(fn: Callable[[], Any]) -> int:
    """The errno ``fn`` failed with, or 0."""
    try:
        fn()
    except OSError as exc:
        return exc.errno or -1
    return 0


@contextmanager
def collect(mm: AddressSpace) -> Iterator[list[Event]]:
    with mm.tracer.collect() as events:
        yield events


def hook_calls(events: list[Event], hook: str | None = None) -> list[HookCall]:
    return [e for e in events if isinstance(e, HookCall) and (hook is None or e.hook == hook)]


def steps(events: list[Event]) -> list[str]:
    """A compact sequence of hook calls and action steps: "hook:mapped", "step:complete"."""
    out = []
    for e in events:
        if isinstance(e, HookCall):
            out.append(f"hook:{e.hook}")
        elif isinstance(e, ActionStep):
            out.append(f"step:{e.step}")
    return out


def layout(mm: AddressSpace) -> list[tuple[int, int]]:
    """(first page, end page) of each VMA relative to BASE."""
    return [((v.vm_start - BASE) // P, (v.vm_end - BASE) // P) for v in mm.vmas()]


def vma_at(mm: AddressSpace, page: int) -> Any:
    vma = mm.find_vma(at(page))
    assert vma is not None and vma.vm_start <= at(page)
    return vma


def make_desc(
    mm: AddressSpace, file: File, start: int, pages: int, flags: int, *, pgoff: int = 0,
    page_prot: int = 0,
) -> VmAreaDesc:
    """A hand-built vm_area_desc as __mmap_region would pass to mmap_prepare."""
    return VmAreaDesc(
        mm, file, start, start + pages * P, pgoff, file, flags, page_prot, MmapAction()
    )


def unmap_all(mm: AddressSpace) -> None:
    """Tear the whole address space down (what exit_mmap does to the driver hooks)."""
    vmas = mm.vmas()
    if vmas:
        mm.munmap(vmas[0].vm_start, vmas[-1].vm_end - vmas[0].vm_start)


def exit_mm(mm: AddressSpace) -> None:
    """The process exits: exit_mmap closes every VMA."""
    mm.exit()


def flags_at(mm: AddressSpace, page: int) -> VM:
    """vm_flags of the VMA holding test page ``page``."""
    return VM(vma_at(mm, page).vm_flags)


def maps_offset(mm: AddressSpace, page: int) -> int:
    """The offset column of the maps line of the VMA holding test page ``page``."""
    addr = at(page)
    for line in mm.maps().splitlines():
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        if start <= addr < end:
            return int(line.split()[2], 16)
    raise AssertionError(f"no VMA at page {page}")


EINVAL = errno.EINVAL
ENOMEM = errno.ENOMEM
