"""The top of the address space: a task_size up to 2**63 works in both builds (the compiled
tree keeps VMA starts as signed 64-bit ints), a larger one is refused by the constructor."""

from __future__ import annotations

import pytest

import vmamodel as v
from vmamodel.constants import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ

P = PAGE_SIZE
ANON = MAP_PRIVATE | MAP_ANONYMOUS


@pytest.mark.parametrize("task_size", [(1 << 64) - P, (1 << 63) + P])
def test_task_size_past_2_63_is_refused(task_size: int) -> None:
    with pytest.raises(ValueError, match="task_size"):
        v.AddressSpace(task_size=task_size)


def test_mappings_just_below_2_63() -> None:
    top = 1 << 63
    mm = v.AddressSpace(task_size=top)
    placed = mm.mmap(0, P, PROT_READ, ANON)  # top-down, right below mmap_base
    fixed = mm.mmap(top - 2 * P, 2 * P, PROT_READ, ANON | MAP_FIXED)
    assert placed < fixed
    mm.munmap(top - P, P)
    assert mm.tree.find(top - P) is None
    assert mm.tree.find(top + P) is None  # a search past any i64 finds nothing
    assert mm.tree.find(-1) is not None
    assert [(x.vm_start, x.vm_end) for x in mm.tree][-1] == (top - 2 * P, top - P)
    mm.validate_mm()
