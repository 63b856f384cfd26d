"""The order of one mmap() (__mmap_region() in mm/vma.c, mmap_action_complete() in mm/util.c),
read off the event trace."""

from __future__ import annotations

import errno

from vmamodel.constants import VM
from vmamodel.drivers import hpet, stacked
from vmamodel.events import (
    ActionStep,
    HookCall,
    MergeAttempt,
    MergeRefused,
    Split,
    SyscallReturn,
    VmaCreated,
    VmaRemoved,
)
from vmamodel.file import VMA_DUMMY_VM_OPS, File, FileOperations, VmOperations

from .probe import Probe, probe_file
from .util import collect, layout, mmap_at, raises_errno, vma_at


def names(events):
    """Each event as a short word: hook calls by hook, action steps by step."""
    out = []
    for e in events:
        if isinstance(e, HookCall):
            out.append(e.hook)
        elif isinstance(e, ActionStep):
            out.append(f"action_{e.step}")
        else:
            out.append(e.kind)
    return out


def test_new_mapping_order(new_mm):
    probe = Probe()
    file = probe_file(probe)
    mmap_at(new_mm, 0, 2, file)
    with collect(new_mm) as events:
        mmap_at(new_mm, 4, 2, file, pgoff=50)
    # prev does not touch [4, 6): a merge is tried (there is a neighbour) and fails quietly
    assert names(events) == [
        "Syscall", "mmap_prepare", "action_prepare", "MergeAttempt", "VmaCreated",
        "action_complete", "mapped", "SyscallReturn",
    ]
    prepare = next(e for e in events if isinstance(e, HookCall))
    assert prepare.vma_id is None  # no VMA exists when mmap_prepare runs


def test_merged_mapping_has_no_vma_no_action_no_mapped(new_mm):
    probe = Probe()
    file = probe_file(probe)
    mmap_at(new_mm, 0, 2, file)
    with collect(new_mm) as events:
        mmap_at(new_mm, 2, 2, file)
    assert names(events) == [
        "Syscall", "mmap_prepare", "action_prepare", "MergeAttempt", "SyscallReturn",
    ]
    [merge] = [e for e in events if isinstance(e, MergeAttempt)]
    assert merge.merged and merge.target_id == vma_at(new_mm, 0).id


def test_map_fixed_closes_the_old_vmas_before_mmap_prepare(new_mm):
    # vms_clean_up_area in __mmap_setup: the old range is dead before the hook runs.
    probe = Probe()
    file = probe_file(probe)
    mmap_at(new_mm, 0, 4, file)
    with collect(new_mm) as events:
        mmap_at(new_mm, 1, 2, file, pgoff=50)
    order = names(events)
    assert order.index("close") < order.index("mmap_prepare") < order.index("mapped")
    # the pieces that stay were split off first (open), the replaced ones go at the end
    assert order[:5] == ["Syscall", "open", "Split", "open", "Split"]
    removed = [e for e in events if isinstance(e, VmaRemoved)]
    assert [e.reason for e in removed] == ["replaced by MAP_FIXED"]
    assert order.index("VmaCreated") < order.index("VmaRemoved") < order.index("mapped")


def test_map_fixed_prepare_failure_leaves_a_hole(new_mm):
    probe = Probe()
    file = probe_file(probe)
    mmap_at(new_mm, 0, 4, file)

    def refuse(desc):
        raise OSError(errno.EBUSY, "no")

    probe.prepare = refuse
    with raises_errno(errno.EBUSY):
        mmap_at(new_mm, 1, 2, file, pgoff=50)
    assert layout(new_mm) == [(0, 1), (3, 4)]


class LegacyOps(VmOperations):
    closes = 0

    def close(self, vma):
        type(self).closes += 1


class Legacy(FileOperations):
    """A legacy .mmap: edits the VMA in place and may fail after doing so."""

    def __init__(self, clear: int = 0, fail: int = 0) -> None:
        self.clear = clear
        self.fail = fail

    def mmap(self, file, vma):
        vma.vm_ops = LegacyOps()
        vma.vm_flags &= ~self.clear
        if self.fail:
            raise OSError(self.fail, "legacy hook fails")


def test_legacy_mmap_runs_on_the_new_vma_after_the_merge_attempt(new_mm):
    file = File("/dev/legacy", size=1 << 20, f_op=Legacy())
    mmap_at(new_mm, 0, 1, file)
    with collect(new_mm) as events:
        mmap_at(new_mm, 1, 1, file, pgoff=50)
    order = names(events)
    assert order.index("MergeAttempt") < order.index("mmap") < order.index("VmaCreated")
    call = next(e for e in events if isinstance(e, HookCall) and e.hook == "mmap")
    assert call.vma_id == vma_at(new_mm, 1).id
    assert layout(new_mm) == [(0, 1), (1, 2)]


def test_legacy_range_that_merges_never_reaches_mmap(new_mm):
    file = File("/dev/legacy", size=1 << 20, f_op=Legacy())
    mmap_at(new_mm, 0, 1, file)
    with collect(new_mm) as events:
        mmap_at(new_mm, 1, 1, file)
    assert layout(new_mm) == [(0, 2)]  # prev has close, but it is expanded, not removed
    assert "mmap" not in names(events)


def test_failing_legacy_mmap_frees_the_vma_without_close(new_mm):
    LegacyOps.closes = 0
    file = File("/dev/legacy", size=1 << 20, f_op=Legacy(fail=errno.EIO))
    with collect(new_mm) as events, raises_errno(errno.EIO):
        mmap_at(new_mm, 0, 1, file)
    assert LegacyOps.closes == 0
    assert not [e for e in events if isinstance(e, (VmaCreated, VmaRemoved))]
    assert layout(new_mm) == []


class Clearing(FileOperations):
    """A legacy .mmap that clears VM_MAYWRITE and installs ops without close."""

    def mmap(self, file, vma):
        vma.vm_ops = PLAIN_OPS
        vma.vm_flags &= ~VM.MAYWRITE


PLAIN_OPS = VmOperations()


def test_no_second_merge_attempt_after_legacy_mmap_changed_the_flags(new_mm):
    # __mmap_new_file_vma() in mm/vma.c: the retry merge after .mmap ("retry_merge") was removed by
    # "mm/vma: remove mmap() retry merge" (6.16); 6.18 and the series never re-merge, so
    # a range whose flags only match its neighbour after .mmap stays a VMA of its own.
    file = File("/dev/legacy", size=1 << 20, f_op=Clearing())
    mmap_at(new_mm, 0, 2, file)
    with collect(new_mm) as events:
        mmap_at(new_mm, 2, 2, file)
    assert layout(new_mm) == [(0, 2), (2, 4)]
    assert vma_at(new_mm, 0).vm_flags == vma_at(new_mm, 2).vm_flags
    assert [(e.side, e.rule) for e in events if isinstance(e, MergeRefused)] == [
        ("prev", "vm_flags")
    ]
    assert len([e for e in events if isinstance(e, MergeAttempt)]) == 1


def test_failure_after_the_vma_exists_unmaps_it(new_mm):
    probe = Probe(mapped_errno=errno.ENOMEM)
    with collect(new_mm) as events, raises_errno(errno.ENOMEM):
        mmap_at(new_mm, 0, 2, probe_file(probe))
    assert names(events) == [
        "Syscall", "mmap_prepare", "action_prepare", "VmaCreated", "action_complete",
        "mapped", "action_unmap", "close", "VmaRemoved", "SyscallReturn",
    ]
    assert isinstance(events[-1], SyscallReturn) and events[-1].errno == errno.ENOMEM


def test_new_file_vma_without_driver_ops_gets_the_dummy_ops(new_mm):
    mmap_at(new_mm, 0, 1, File("/dev/plain", f_op=type("P", (FileOperations,), {
        "mmap_prepare": lambda self, desc: None})()))
    assert vma_at(new_mm, 0).vm_ops is VMA_DUMMY_VM_OPS


def test_split_events_name_both_pieces(new_mm):
    probe = Probe()
    mmap_at(new_mm, 0, 4, probe_file(probe))
    original = vma_at(new_mm, 0).id
    with collect(new_mm) as events:
        new_mm.mprotect(vma_at(new_mm, 0).vm_start + 4096, 4096, 1)
    splits = [e for e in events if isinstance(e, Split)]
    assert [s.vma_id for s in splits] == [original, original]
    opened = [e.vma_id for e in events if isinstance(e, HookCall) and e.hook == "open"]
    assert opened == [s.new_id for s in splits]
    assert not [e for e in events if isinstance(e, MergeRefused)]


def test_failed_legacy_mmap_undoes_the_drivers_partial_mapping(new_mm):
    # __mmap_new_file_vma: unmap_region() zaps what the driver remapped before failing.
    upper = stacked.open_stacked(hpet.open_device(hpet.HpetDevice(), form="old"),
                                 fail_after=errno.EIO)
    with collect(new_mm) as events, raises_errno(errno.EIO):
        mmap_at(new_mm, 0, 1, upper, prot=1, pgoff=0)
    assert any(isinstance(e, ActionStep) and e.step == "remap" for e in events)
    assert not new_mm.pages.present
    assert layout(new_mm) == []
