"""MmapState writes out init_vma_munmap() of the struct it embeds (a call through super()
costs more than the stores on every mmap): the two must set the same fields alike."""

from __future__ import annotations

from vmamodel.constants import PAGE_SIZE, VM_READ, VM_WRITE
from vmamodel.mmap import MmapState
from vmamodel.munmap import VmaMunmapStruct


def test_mmap_state_starts_its_munmap_struct_as_init_vma_munmap_does() -> None:
    start, length = 0x10000, 4 * PAGE_SIZE
    state = MmapState(start, length, 0, VM_READ | VM_WRITE, None)
    vms = VmaMunmapStruct(None, start, start + length)
    # dir(): the slots in the pure build, the native fields in the compiled one
    fields = [n for n in dir(vms) if not n.startswith("_") and not callable(getattr(vms, n))]
    assert "clear_ptes" in fields and "vmas" in fields
    for name in fields:
        assert getattr(state, name) == getattr(vms, name), name
