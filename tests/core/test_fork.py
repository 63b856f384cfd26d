"""fork(2) and exit(2): what the child gets (dup_mmap), how its anon_vmas show through later
merges (anon_vma_fork: a copy of a faulted VMA is a fork child), and what exit_mmap does.

The first part runs on both backends; the second is the model's own bookkeeping (driver
ledgers, vm_ops->open/close, accounting, failure injection), which the host cannot show.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import vmamodel as v
from vmamodel import AddressSpace
from vmamodel.drivers import refcount_good as good
from vmamodel.drivers import stm
from vmamodel.drivers.common import char_device
from vmamodel.events import HookCall
from vmamodel.file import FileOperations, VmOperations
from vmamodel.vma import VmAreaDesc

from .util import NOREPLACE, RO, RW, SHANON, P, at, flags_of, layout

DROPPABLE = v.MAP_DROPPABLE | v.MAP_ANONYMOUS | v.MAP_FIXED_NOREPLACE


@contextmanager
def forked(mm: Any) -> Iterator[Any]:
    """fork(); the child exits at the end of the block."""
    child = mm.fork()
    try:
        yield child
    finally:
        child.exit()


# ---- what the child gets ----------------------------------------------------------------------


def test_the_child_has_the_parents_mappings(mm, memfd):
    file = memfd("fork", 8 * P)
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), P, RO, NOREPLACE)
    mm.mmap(at(5), 2 * P, RW, SHANON)
    mm.mmap(at(8), 2 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, file, 0)
    mm.mmap(at(11), 2 * P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, file, 2 * P)
    mm.touch(at(0), write=True)
    with forked(mm) as child:
        assert child.maps() == mm.maps()
        assert flags_of(child) == flags_of(mm)


def test_changes_after_fork_stay_on_their_side(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    with forked(mm) as child:
        child.munmap(at(1), P)
        mm.mprotect(at(2), P, RO)
        assert layout(child) == [(0, 1, "rw-p"), (2, 4, "rw-p")]
        assert layout(mm) == [(0, 2, "rw-p"), (2, 3, "r--p"), (3, 4, "rw-p")]


def test_locked_vmas_are_not_locked_in_the_child(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE | v.MAP_LOCKED)
    with forked(mm) as child:
        assert "lo" in flags_of(mm)[0].split()
        assert flags_of(child) == ["rd wr mr mw me ac"]


def test_an_empty_address_space_forks_to_an_empty_one(mm):
    with forked(mm) as child:
        assert child.maps() == ""
        child.mmap(at(0), P, RW, NOREPLACE)
        assert mm.maps() == ""


def test_the_child_of_a_child_has_the_same_mappings(mm):
    """The pieces the child split get anon_vmas of their own in the grandchild."""
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    with forked(mm) as child:
        child.mprotect(at(1), P, RO)
        with forked(child) as grandchild:
            assert grandchild.maps() == child.maps()
            grandchild.mprotect(at(1), P, RW)
            child.mprotect(at(1), P, RW)
            assert layout(grandchild) == [(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 3, "rw-p")]
            assert layout(child) == [(0, 3, "rw-p")]


def test_the_parent_outlives_the_childs_exit(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    before = mm.maps()
    child = mm.fork()
    child.munmap(at(0), P)
    child.exit()
    assert mm.maps() == before
    mm.mmap(at(2), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 3, "rw-p")]


# ---- anon_vma_fork, seen through merges (is_mergeable_anon_vma() in mm/vma.c) ---------------


def test_a_new_range_next_to_a_faulted_vma_merges_in_the_parent_only(mm):
    """Rule 2: the child's copy of a faulted VMA is a fork child; an unfaulted neighbour may
    not adopt its anon_vma."""
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    with forked(mm) as child:
        child.mmap(at(1), P, RW, NOREPLACE)
        mm.mmap(at(1), P, RW, NOREPLACE)
        assert layout(child) == [(0, 1, "rw-p"), (1, 2, "rw-p")]
        assert layout(mm) == [(0, 2, "rw-p")]


def test_a_new_range_before_a_faulted_vma_does_not_merge_in_the_child(mm):
    mm.mmap(at(1), P, RW, NOREPLACE)
    mm.touch(at(1), write=True)
    with forked(mm) as child:
        child.mmap(at(0), P, RW, NOREPLACE)
        assert layout(child) == [(0, 1, "rw-p"), (1, 2, "rw-p")]


def test_unfaulted_and_read_faulted_copies_merge_freely(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mmap(at(4), P, RW, NOREPLACE)
    mm.touch(at(4))
    with forked(mm) as child:
        child.mmap(at(1), P, RW, NOREPLACE)
        child.mmap(at(5), P, RW, NOREPLACE)
        assert layout(child) == [(0, 2, "rw-p"), (4, 6, "rw-p")]


def test_a_vma_first_faulted_in_the_child_is_not_a_fork_child(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    with forked(mm) as child:
        child.touch(at(0), write=True)
        child.mmap(at(1), P, RW, NOREPLACE)
        assert layout(child) == [(0, 2, "rw-p")]


def test_split_and_restore_inside_the_child_remerges(mm):
    """Rule 1 in a fork child: the pieces of a split share the child's anon_vma."""
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    with forked(mm) as child:
        child.mprotect(at(1), P, RO)
        child.mprotect(at(1), P, RW)
        assert layout(child) == [(0, 3, "rw-p")]


def test_pieces_split_before_the_fork_get_separate_anon_vmas_in_the_child(mm):
    """Each copy gets an anon_vma of its own, so pieces that shared one in the parent no
    longer do; the parent's pieces still re-merge."""
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.mprotect(at(1), P, RO)
    with forked(mm) as child:
        child.mprotect(at(1), P, RW)
        mm.mprotect(at(1), P, RW)
        assert layout(child) == [(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 3, "rw-p")]
        assert layout(mm) == [(0, 3, "rw-p")]


def test_a_faulted_fork_child_does_not_merge_into_an_unfaulted_neighbour(mm):
    """Rule 5: mprotect makes a faulted copy match its unfaulted neighbour; the neighbour may
    not adopt a fork child's anon_vma (the parent's VMAs merge)."""
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mmap(at(1), P, RW | v.PROT_EXEC, NOREPLACE)
    mm.touch(at(1), write=True)
    with forked(mm) as child:
        child.mprotect(at(1), P, RW)
        mm.mprotect(at(1), P, RW)
        assert layout(child) == [(0, 1, "rw-p"), (1, 2, "rw-p")]
        assert layout(mm) == [(0, 2, "rw-p")]


def test_an_unfaulted_vma_does_not_merge_with_a_faulted_fork_child(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.mmap(at(1), P, RO, NOREPLACE)
    with forked(mm) as child:
        child.mprotect(at(1), P, RW)
        mm.mprotect(at(1), P, RW)
        assert layout(child) == [(0, 1, "rw-p"), (1, 2, "rw-p")]
        assert layout(mm) == [(0, 2, "rw-p")]


def test_a_wipeonfork_copy_starts_without_an_anon_vma(mm):
    """VM_WIPEONFORK (MAP_DROPPABLE): the copy is empty, so unlike an ordinary copy of a
    faulted VMA it merges with a new neighbour."""
    mm.mmap(at(0), P, RW, DROPPABLE)
    mm.touch(at(0), write=True)
    mm.mmap(at(4), P, RW, NOREPLACE)
    mm.touch(at(4), write=True)
    with forked(mm) as child:
        child.mmap(at(1), P, RW, DROPPABLE)
        child.mmap(at(5), P, RW, NOREPLACE)
        assert layout(child) == [(0, 2, "rw-p"), (4, 5, "rw-p"), (5, 6, "rw-p")]
        assert flags_of(child)[0] == "rd wr mr mw me nr wf dd dp"


def test_the_parent_keeps_merging_after_many_forks(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    for _ in range(3):
        with forked(mm) as child:
            child.touch(at(0), write=True)
    mm.mprotect(at(0), P, RO)
    mm.mprotect(at(0), P, RW)
    mm.mmap(at(1), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 2, "rw-p")]


# ---- the model's bookkeeping ------------------------------------------------------------------


def v4_mm(**kwargs: Any) -> AddressSpace:
    return AddressSpace(profile="v4", debug=True, **kwargs)


def good_mappings(mm: AddressSpace) -> good.GoodDevice:
    """Three refcount_good VMAs (pages 0-1, 3, 5-6) and an anonymous one."""
    dev = good.GoodDevice()
    file = good.open_device(dev)
    for page, pages in ((0, 2), (3, 1), (5, 2)):
        mm.mmap(at(page), pages * P, RW, v.MAP_SHARED | v.MAP_FIXED, file, page * P)
    mm.mmap(at(8), P, RW, NOREPLACE)
    return dev


def test_every_copy_gets_open_and_exit_closes_each_in_address_order():
    mm = v4_mm()
    dev = good_mappings(mm)
    with mm.tracer.collect() as events:
        child = mm.fork()
    opened = [e.vma_id for e in events if isinstance(e, HookCall) and e.hook == "open"]
    assert opened == [vma.id for vma in child.tree if vma.vm_file is not None]
    assert dev.refs == 6
    with child.tracer.collect() as events:
        child.exit()
    closed = [e.vma_id for e in events if isinstance(e, HookCall) and e.hook == "close"]
    assert closed == opened
    assert child.maps() == "" and child.map_count == 0 and dev.refs == 3
    mm.exit()
    dev.ledger.assert_balanced()
    assert dev.ledger.causes("acquire") == {"mapped": 3, "open": 3}


def test_vm_private_data_is_shared_with_the_copy():
    mm = v4_mm()
    good_mappings(mm)
    child = mm.fork()
    for parent_vma, child_vma in zip(mm.tree, child.tree, strict=True):
        assert child_vma.vm_private_data is parent_vma.vm_private_data
        assert child_vma.vm_mm is child and child_vma.id != parent_vma.id


def test_a_real_driver_balances_across_fork_and_exit():
    """stm (v4): a PM reference per VMA object; the copy's open takes one, its close puts it.
    The remapped PFNs are copied into the child's page tables (VM_PFNMAP)."""
    mm = v4_mm()
    dev = stm.StmDevice()
    mm.mmap(at(0), 4 * P, RW, v.MAP_SHARED | v.MAP_FIXED, stm.open_device(dev, nr_chans=4), 0)
    child = mm.fork()
    grandchild = child.fork()
    assert dev.ledger.count(stm.PM) == 3
    assert child.pages.present == mm.pages.present != set()
    child.exit()
    mm.exit()
    grandchild.exit()
    dev.ledger.assert_balanced()


def test_fork_charges_the_accounted_vmas_and_exit_returns_them():
    mm = v4_mm()
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)  # accounted
    mm.mmap(at(6), 2 * P, RO, NOREPLACE)  # not
    mm.mmap(at(9), 3 * P, RW, SHANON)  # not
    parent = mm.committed_pages
    assert parent == 4
    child = mm.fork()
    assert child.committed_pages == parent + 4 and mm.committed_pages == parent
    assert (child.total_vm, child.data_vm, child.locked_vm) == (mm.total_vm, mm.data_vm, 0)
    child.exit()
    assert child.committed_pages == parent and child.total_vm == 0


class DontCopyFops(FileOperations):
    """A driver that keeps its mappings out of children (VM_DONTCOPY, as many drivers set)."""

    def mmap_prepare(self, desc: VmAreaDesc) -> None:
        desc.vm_flags |= v.VM.DONTCOPY
        desc.vm_ops = VmOperations()


def test_dontcopy_vmas_stay_out_of_the_child_and_its_statistics():
    mm = v4_mm()
    file = char_device("/dev/dontcopy", DontCopyFops(), None)
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(2), 3 * P, RW, v.MAP_SHARED | v.MAP_FIXED, file, 0)
    child = mm.fork()
    assert [(x.vm_start, x.vm_end) for x in child.vmas()] == [(at(0), at(2))]
    assert child.total_vm == mm.total_vm - 3 and child.map_count == 1
    child.mmap(at(2), P, RW, NOREPLACE)
    assert layout(child) == [(0, 3, "rw-p")]


def test_only_vm_nohugepage_of_def_flags_reaches_the_child():
    mm = v4_mm()
    mm.def_flags = v.VM.NOHUGEPAGE | v.VM.LOCKED | v.VM.LOCKONFAULT
    child = mm.fork()
    assert child.def_flags == v.VM.NOHUGEPAGE
    child.mmap(at(0), P, RW, NOREPLACE)
    assert flags_of(child) == ["rd wr mr mw me ac nh"]


def test_fork_ignores_max_map_count():
    mm = v4_mm(max_map_count=3)
    for page in range(0, 8, 2):
        mm.mmap(at(page), P, RW, NOREPLACE)
    assert mm.map_count == 4
    assert mm.fork().map_count == 4


def test_page_tables_are_copied_only_where_a_fault_could_not_refill_them():
    """vma_needs_copy(): pages of a VMA with an anon_vma are copied; the read-faulted pages
    of an unfaulted private mapping are left for the child to fault again."""
    mm = v4_mm()
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(4), 2 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.touch(at(1))
    mm.touch(at(4))
    mm.mmap(at(8), P, RW, DROPPABLE)
    mm.touch(at(8), write=True)
    child = mm.fork()
    assert child.pages.present == {at(0), at(1)}
    assert mm.pages.present == {at(0), at(1), at(4), at(8)}


#: Each failure point of dup_mmap() and how often a fork of FAILING_FORK's space reaches it.
FORK_POINTS = [("mt_dup", 1), ("vm_enough_memory", 4), ("fork_vma_dup", 7),
               ("anon_vma_fork", 7), ("copy_page_range", 7)]


def failing_fork_space() -> tuple[AddressSpace, good.GoodDevice]:
    """Three refcount_good VMAs among four accounted anonymous ones, one faulted."""
    mm = v4_mm()
    dev = good_mappings(mm)
    for page in (2, 4, 10):
        mm.mmap(at(page), P, RW, NOREPLACE)
    mm.touch(at(4), write=True)
    return mm, dev


@pytest.mark.parametrize(("point", "nth"), [(p, n) for p, hits in FORK_POINTS
                                            for n in range(1, hits + 1)])
def test_a_failed_fork_leaves_the_parent_and_every_ledger_as_they_were(point, nth):
    """dup_mmap() failure paths: copies already linked (with ->open run) are closed and
    their charges returned; fork fails with ENOMEM whatever failed."""
    mm, dev = failing_fork_space()
    before = (mm.maps(), mm.committed_pages, dev.refs)
    with mm.inject(point, nth=nth, errno=errno.EINVAL) as rule, pytest.raises(OSError) as info:
        mm.fork()
    assert rule.fired == 1
    assert info.value.errno == errno.ENOMEM
    assert (mm.maps(), mm.committed_pages, dev.refs) == before
    opened = dev.ledger.causes("acquire").get("open", 0)
    assert opened == dev.ledger.causes("release").get("close", 0)
    mm.exit()
    dev.ledger.assert_balanced()


@pytest.mark.parametrize(("point", "hits"), FORK_POINTS)
def test_each_fork_failure_point_is_reached_as_often_as_counted(point, hits):
    mm, _ = failing_fork_space()
    with mm.inject(point, nth=hits + 1) as rule:
        mm.fork().exit()
    assert rule.seen == hits and rule.fired == 0


def test_a_failed_copy_page_range_closes_the_copy_it_opened():
    mm = v4_mm()
    dev = good_mappings(mm)
    with mm.inject("copy_page_range", nth=2), pytest.raises(OSError):
        mm.fork()
    assert dev.ledger.causes("acquire")["open"] == 2
    assert dev.ledger.causes("release")["close"] == 2


def test_exit_leaves_nothing_and_returns_the_charge():
    mm = v4_mm()
    dev = good_mappings(mm)
    mm.mmap(at(10), 2 * P, RW, NOREPLACE)
    mm.touch(at(10), write=True)
    mm.exit()
    assert (mm.maps(), mm.map_count, mm.committed_pages, mm.pages.present) == ("", 0, 0, set())
    dev.ledger.assert_balanced()


# ---- madvise and mlock state across fork (both backends) ---------------------------------------


def test_dontfork_vmas_are_left_out_of_the_child(mm):
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.madvise(at(1), P, v.MADV_DONTFORK)
    with forked(mm) as child:
        assert layout(child) == [(0, 1, "rw-p"), (2, 3, "rw-p")]
        child.mmap(at(1), P, RW, NOREPLACE)
        assert layout(child) == [(0, 3, "rw-p")]
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 3, "rw-p")]


def test_a_wipeonfork_vma_is_copied_without_its_anon_vma(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.madvise(at(0), P, v.MADV_WIPEONFORK)
    mm.mmap(at(4), P, RW, NOREPLACE)
    mm.touch(at(4), write=True)
    mm.madvise(at(4), P, v.MADV_WIPEONFORK)
    mm.madvise(at(4), P, v.MADV_KEEPONFORK)
    with forked(mm) as child:
        assert flags_of(child)[0] == "rd wr mr mw me ac wf"
        child.mmap(at(1), P, RW, NOREPLACE)
        child.madvise(at(1), P, v.MADV_WIPEONFORK)
        child.mmap(at(5), P, RW, NOREPLACE)
        assert layout(child) == [(0, 2, "rw-p"), (4, 5, "rw-p"), (5, 6, "rw-p")]


def test_guard_markers_are_copied_into_the_child(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(1), P, v.MADV_GUARD_INSTALL)
    with forked(mm) as child:
        with pytest.raises(OSError) as info:
            child.touch(at(1))
        assert info.value.errno == errno.EFAULT
        child.touch(at(2), write=True)
        child.madvise(at(1), P, v.MADV_GUARD_REMOVE)
        child.touch(at(1))
    with pytest.raises(OSError):
        mm.touch(at(1))


def test_guard_markers_of_a_wipeonfork_vma_are_not_copied(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(0), 4 * P, v.MADV_WIPEONFORK)
    mm.madvise(at(1), P, v.MADV_GUARD_INSTALL)
    with forked(mm) as child:
        child.touch(at(1), write=True)
    with pytest.raises(OSError):
        mm.touch(at(1))


def test_mlockall_future_does_not_reach_the_child(mm):
    mm.mlockall(v.MCL_FUTURE)
    with forked(mm) as child:
        child.mmap(at(0), P, RW, NOREPLACE)
        mm.mmap(at(2), P, RW, NOREPLACE)
        assert flags_of(child) == ["rd wr mr mw me ac"]
        assert flags_of(mm) == ["rd wr mr mw me lo ac"]
    mm.munlockall()


def test_lock_on_fault_is_cleared_in_the_child(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mlock2(at(0), 2 * P, v.MLOCK_ONFAULT)
    with forked(mm) as child:
        assert flags_of(child) == ["rd wr mr mw me ac"]
        assert flags_of(mm) == ["rd wr mr mw me lo lf ac"]
