"""Fault injection on the mmap path: every point, and the state the kernel leaves behind.

A failed mmap into free space leaves the address space as it was; a failed MAP_FIXED over
an existing mapping leaves the old mapping when the failure comes before its teardown
(limits, the split of the gather, accounting), and a hole after (vms_abort_munmap_vmas() in
mm/vma.c; docs/architecture.md section 4.3).
"""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE
from vmamodel.events import FaultInjected
from vmamodel.inject import FAILURE_POINTS
from vmamodel.mmap_action import mmap_action_remap_full

from .probe import Probe, probe_file
from .util import RO, RW, P, at, collect, layout, raises_errno

#: The points one mmap of an mmap_prepare driver with an action reaches, in order.
MMAP_POINTS = ["max_map_count", "vm_enough_memory", "mmap_prepare", "action_prepare",
               "vma_alloc", "vma_prealloc", "action_complete", "mapped", "success_hook"]
#: Failures before the old range is torn down by a MAP_FIXED mmap.
BEFORE_TEARDOWN = {"max_map_count", "split_alloc", "munmap_gather", "vm_enough_memory"}


def remap_probe(mm) -> Probe:
    def prepare(desc):
        mmap_action_remap_full(desc, 0x77)
        if mm.profile.success_error_hooks:
            desc.action.success_hook = lambda vma: None

    return Probe(prepare=prepare)


def state(mm):
    return (mm.maps(), mm.map_count, mm.total_vm, mm.committed_pages)


def map_private(mm, page, pages, file):
    return mm.mmap(at(page), pages * P, RW, MAP_PRIVATE | MAP_FIXED, file, 0)


def test_the_points_are_reached_in_the_kernels_order(new_mm):
    new_mm.injector.add("success_hook", nth=99)  # arm the injector to count the hits
    map_private(new_mm, 0, 2, probe_file(remap_probe(new_mm)))
    reached = [p for p in MMAP_POINTS if new_mm.injector.reached.get(p)]
    expected = [p for p in MMAP_POINTS if p != "success_hook" or new_mm.profile.name == "v4"]
    assert reached == expected
    assert list(new_mm.injector.reached) == expected


@pytest.mark.parametrize("point", MMAP_POINTS)
def test_failure_into_free_space_leaves_nothing(new_mm, point):
    if point == "success_hook" and new_mm.profile.name != "v4":
        point = "mapped"  # mainline has no success_hook
    probe = remap_probe(new_mm)
    before = state(new_mm)
    with collect(new_mm) as events, new_mm.inject(point), raises_errno(FAILURE_POINTS[point]):
        map_private(new_mm, 0, 2, probe_file(probe))
    maps, count, total_vm, committed = state(new_mm)
    assert (maps, count, total_vm) == before[:3]
    # A failed mmap_prepare or action prepare does not return the commit charge taken by
    # __mmap_setup: __mmap_region jumps past unacct_error (the kernel's own leak).
    leaked = 2 if point in ("mmap_prepare", "action_prepare") else 0
    assert committed == before[3] + leaked
    assert [e.point for e in events if isinstance(e, FaultInjected)] == [point]


@pytest.mark.parametrize("point", [*MMAP_POINTS, "split_alloc", "munmap_gather"])
def test_failure_over_an_existing_mapping(new_mm, point):
    if point == "success_hook" and new_mm.profile.name != "v4":
        point = "mapped"
    # Read-only, so not accounted: the new private writable range must be charged.
    new_mm.mmap(at(0), 6 * P, RO, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    before = state(new_mm)
    with new_mm.inject(point), raises_errno(FAILURE_POINTS[point]):
        map_private(new_mm, 2, 2, probe_file(remap_probe(new_mm)))
    if point in ("munmap_gather", "vm_enough_memory"):
        # After the gather split both ends: the pieces are re-attached and the splits stay
        # (vms_gather_munmap_vmas, vms_abort_munmap_vmas).
        assert layout(new_mm) == [(0, 2), (2, 4), (4, 6)]
    elif point in BEFORE_TEARDOWN:
        assert state(new_mm) == before
    else:
        assert layout(new_mm) == [(0, 2), (4, 6)]


def test_errno_nth_and_repeat(new_mm):
    file = probe_file(Probe())
    with new_mm.inject("mapped", nth=2, errno=errno.EIO, repeat=True) as rule:
        map_private(new_mm, 0, 1, file)
        for page in (2, 4):
            with raises_errno(errno.EIO):
                map_private(new_mm, page, 1, file)
    assert rule.fired == 2 and rule.seen == 3
    assert layout(new_mm) == [(0, 1)]
    map_private(new_mm, 6, 1, file)  # the rule is gone with the block
    assert not new_mm.injector.armed


def test_unknown_point_and_bad_nth_are_refused(new_mm):
    with pytest.raises(ValueError, match="unknown failure point"), new_mm.inject("vma_free"):
        pass
    with pytest.raises(ValueError, match="nth counts from 1"), new_mm.inject("mapped", nth=0):
        pass
