"""init_vma_munmap() fills a struct vma_munmap_struct, on its own (munmap) and embedded in the
mmap_state of an mmap that replaces VMAs; MmapState sets, of the embedded struct, what an mmap
that replaces nothing reads."""

from __future__ import annotations

import pytest

import vmamodel as v
from vmamodel.constants import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_PRIVATE,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
)
from vmamodel.mmap import MmapState
from vmamodel.munmap import VmaMunmapStruct, init_vma_munmap

P = PAGE_SIZE


def _fields(obj: object) -> dict[str, object]:
    """The fields an object has set (dir(): the slots in the pure build, the native fields
    in the compiled one; an unset one raises AttributeError)."""
    out = {}
    for name in dir(obj):
        if name.startswith("_"):
            continue
        try:
            value = getattr(obj, name)
        except AttributeError:
            continue
        if not callable(value):
            out[name] = value
    return out


def test_init_vma_munmap_sets_every_field() -> None:
    vms = VmaMunmapStruct()
    init_vma_munmap(vms, None, 0x10000, 0x14000)
    fields = _fields(vms)
    assert set(fields) == {
        "vma", "start", "end", "vmas", "prev", "next", "nr_pages", "locked_vm", "nr_accounted",
        "exec_vm", "stack_vm", "data_vm", "clear_ptes",
    }
    assert fields["vmas"] == [] and fields["nr_pages"] == 0 and fields["clear_ptes"] is False


def test_mmap_state_embeds_what_init_vma_munmap_sets() -> None:
    """With something to gather, __mmap_setup() runs init_vma_munmap() on the struct that
    MmapState embeds: the same fields as on its own."""
    start, length = 0x10000, 4 * P
    alone = VmaMunmapStruct()
    init_vma_munmap(alone, None, start, start + length)
    embedded = MmapState()
    init_vma_munmap(embedded, None, start, start + length)
    assert _fields(embedded) == _fields(alone)


@pytest.mark.parametrize("over", [False, True])
def test_mmap_with_and_without_something_to_replace(over: bool) -> None:
    """Both paths of __mmap_setup() (and the completion that reads the gather's counters)."""
    mm = v.AddressSpace()
    anon = MAP_PRIVATE | MAP_ANONYMOUS
    base = mm.mmap(0, 8 * P, PROT_READ | PROT_WRITE, anon)
    mm.touch(base + P, write=True)
    total = mm.total_vm
    if over:
        mm.mmap(base + 2 * P, 2 * P, PROT_READ, anon | MAP_FIXED)
        assert mm.total_vm == total
        assert len(mm.vmas()) == 3
        assert mm.data_vm == 6
    else:
        mm.mmap(0, 2 * P, PROT_READ, anon)
        assert mm.total_vm == total + 2
        assert len(mm.vmas()) == 2
