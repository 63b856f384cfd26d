"""The compat layer: vfs_mmap, compat_vma_mmap, __vma_check_mmap_hook, stacked files."""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import VM
from vmamodel.driver_error import DriverError
from vmamodel.drivers import hpet, stacked
from vmamodel.drivers import refcount_good as good
from vmamodel.events import WarnOn
from vmamodel.file import VMA_DUMMY_VM_OPS, File, FileOperations, VmOperations
from vmamodel.mmap_action import mmap_action_remap_full

from .probe import Probe, ProbeOps, probe_file
from .util import (
    RO,
    at,
    collect,
    errno_of,
    hook_calls,
    layout,
    mmap_at,
    raises_errno,
    steps,
    vma_at,
)


class LegacyWithMapped(FileOperations):
    """A legacy .mmap that (wrongly) installs ops with ``mapped``."""

    def __init__(self, probe: Probe) -> None:
        self.ops = ProbeOps(probe)

    def mmap(self, file, vma):
        vma.vm_ops = self.ops


class PlainOps(VmOperations):
    pass


class Recorder(FileOperations):
    """An inner prepare-style file without ``mapped`` (usable on 6.18 too)."""

    def __init__(self, clear=VM.NONE, set_ops=True):
        self.seen_ops = []
        self.clear = clear
        self.set_ops = set_ops

    def mmap_prepare(self, desc):
        self.seen_ops.append(desc.vm_ops)
        desc.vm_flags &= ~self.clear
        if self.set_ops:
            desc.vm_ops = PlainOps()


def recorder_file(rec):
    return File("/lower/file", size=1 << 20, f_op=rec)


# -- __vma_check_mmap_hook ----------------------------------------------------------------


def test_v4_legacy_mmap_leaving_mapped_is_einval(mm):
    probe = Probe()
    file = File("/dev/legacy", f_op=LegacyWithMapped(probe))
    with collect(mm) as events, raises_errno(errno.EINVAL):
        mmap_at(mm, 0, 2, file)
    assert layout(mm) == []
    assert probe.calls == []  # neither mapped nor close
    assert any(isinstance(e, WarnOn) and "__vma_check_mmap_hook" in e.message for e in events)


def test_mainline_accepts_it_and_never_calls_mapped(make_mm):
    mm = make_mm("mainline")
    probe = Probe()
    mmap_at(mm, 0, 2, File("/dev/legacy", f_op=LegacyWithMapped(probe)))
    assert layout(mm) == [(0, 2)]
    assert probe.calls == []


def test_legacy_mmap_injection_point(mm):
    with mm.inject("mmap"), raises_errno(errno.EINVAL):
        mmap_at(mm, 0, 1, hpet.open_device(hpet.HpetDevice(), form="old"), prot=RO, pgoff=0)
    assert layout(mm) == []


# -- stacked files ------------------------------------------------------------------------


def test_stacked_file_calls_inner_mapped_once(make_mm):
    mm = make_mm("mainline")
    dev = good.GoodDevice()
    inner = good.open_device(dev)
    upper = stacked.open_stacked(inner)
    with collect(mm) as events:
        mmap_at(mm, 0, 2, upper)
    # hook calls are traced when they return: the outer .mmap last
    assert [c.hook for c in hook_calls(events)] == ["mmap_prepare", "mapped", "mmap"]
    assert dev.ledger.causes("acquire") == {"mapped": 1}
    assert vma_at(mm, 0).vm_file is inner  # vma_set_file in backing_file_mmap
    mm.munmap(at(0), 2 * 4096)
    dev.ledger.assert_balanced()


def test_stacked_mapping_never_merges_through_the_prepare_path(make_mm):
    # The legacy path allocates a VMA before any hook: no merge attempt after .mmap.
    mm = make_mm("mainline")
    dev = good.GoodDevice()
    upper = stacked.open_stacked(good.open_device(dev))
    mmap_at(mm, 0, 2, upper)
    mmap_at(mm, 2, 2, upper)
    assert dev.ledger.causes("acquire") == {"mapped": 2}


def test_v4_stacked_mapped_file_fails_and_leaks_the_inner_reference(mm):
    # v4's __vma_check_mmap_hook() (docs/drivers.md sections 10 and 11): the inner mapped
    # already counted when the outer check fires, and the legacy error path frees the VMA
    # without close.
    dev = good.GoodDevice()
    upper = stacked.open_stacked(good.open_device(dev))
    with raises_errno(errno.EINVAL):
        mmap_at(mm, 0, 2, upper)
    assert layout(mm) == []
    assert dev.ledger.leaks() == {"ref": 1}
    assert dev.ledger.causes("release") == {}


def test_outer_failure_after_inner_mapped_leaks(new_mm):
    # The kernel's own leak, v4 and mainline alike (docs/drivers.md section 2.3): the inner
    # mapped took a reference inside the compat call, a later step of the outer legacy
    # hook fails, and the VMA is freed with dummy ops - close never runs.
    dev = good.GoodDevice()
    upper = stacked.open_stacked(good.open_device(dev), fail_after=errno.EIO)
    with collect(new_mm) as events, raises_errno(errno.EIO):
        mmap_at(new_mm, 0, 2, upper)
    assert layout(new_mm) == []
    assert [(c.hook, c.errno) for c in hook_calls(events)] == [
        ("mmap_prepare", 0), ("mapped", 0), ("mmap", errno.EIO)]
    assert dev.ledger.leaks() == {"ref": 1}
    assert dev.ledger.causes("acquire") == {"mapped": 1}
    assert dev.ledger.causes("release") == {}


def test_outer_failure_after_inner_mapped_cannot_happen_on_6_18(make_mm):
    mm = make_mm("6.18")
    upper = stacked.open_stacked(good.open_device(good.GoodDevice()), fail_after=errno.EIO)
    with pytest.raises(DriverError) as info:  # no vm_ops->mapped to take the reference in
        mmap_at(mm, 0, 2, upper)
    assert isinstance(info.value.__cause__, TypeError)


@pytest.mark.parametrize(("profile", "err"), [("v4", errno.EINVAL), ("mainline", 0)])
def test_stacked_over_a_legacy_inner_file_that_sets_mapped(make_mm, profile, err):
    # The inner file has a legacy .mmap: vfs_mmap on it runs the v4 check.
    mm = make_mm(profile)
    probe = Probe()
    inner = File("/lower/legacy", f_op=LegacyWithMapped(probe))
    if err:
        with raises_errno(err):
            mmap_at(mm, 0, 1, stacked.open_stacked(inner))
        assert layout(mm) == []
    else:
        mmap_at(mm, 0, 1, stacked.open_stacked(inner))
        assert layout(mm) == [(0, 1)]
    assert probe.calls == []


def test_compat_completes_the_inner_action_and_calls_mapped_once(new_mm):
    # ... then, under v4, the outer vfs_mmap's check refuses the result (EINVAL).
    probe = Probe(prepare=lambda desc: mmap_action_remap_full(desc, 0x40))
    v4 = new_mm.profile.name == "v4"
    with collect(new_mm) as events:
        err = errno_of(lambda: mmap_at(new_mm, 0, 2, stacked.open_stacked(probe_file(probe))))
    assert err == (errno.EINVAL if v4 else 0)
    assert probe.names() == ["mmap_prepare", "mapped"]
    assert [s for s in steps(events) if s.startswith("step:")] == [
        "step:prepare", "step:remap", "step:complete"]
    if not v4:
        assert vma_at(new_mm, 0).vm_flags & VM.PFNMAP
        assert {at(0), at(1)} <= new_mm.pages.present


def test_stacked_over_a_legacy_inner_file(mm):
    upper = stacked.open_stacked(hpet.open_device(hpet.HpetDevice(), form="old"))
    mmap_at(mm, 0, 1, upper, prot=RO, pgoff=0)
    assert vma_at(mm, 0).vm_flags & VM.PFNMAP


def test_stacked_over_an_unmappable_file_is_enodev(mm):
    upper = stacked.open_stacked(File("/lower/nommap", f_op=FileOperations()))
    with raises_errno(errno.ENODEV):
        mmap_at(mm, 0, 1, upper)


def test_stacked_accessed_runs_even_on_failure(mm):
    inner = good.open_device(good.GoodDevice())
    upper = stacked.open_stacked(inner)
    with mm.inject("mmap_prepare"), raises_errno(errno.EINVAL):
        mmap_at(mm, 0, 1, upper)
    assert upper.private_data.accessed == 1


# -- compat_set_desc_from_vma / compat_set_vma_from_desc ---------------------------------


@pytest.mark.parametrize("profile", ["6.18", "v4", "mainline"])
def test_compat_writes_vm_ops_unconditionally(make_mm, profile):
    # An inner hook that sets no ops leaves vm_ops None after the compat write-back,
    # except in mainline where the desc was pre-filled with the VMA's (dummy) ops.
    mm = make_mm(profile)
    rec = Recorder(set_ops=False)
    mmap_at(mm, 0, 1, stacked.open_stacked(recorder_file(rec)))
    ops = vma_at(mm, 0).vm_ops
    assert ops is (VMA_DUMMY_VM_OPS if profile == "mainline" else None)


class HidingRemap(FileOperations):
    def mmap_prepare(self, desc):
        mmap_action_remap_full(desc, 0x40)
        desc.action.hide_from_rmap_until_complete = True


def test_compat_hides_nothing_from_rmap(new_mm):
    inner = File("/lower/remap", f_op=HidingRemap())
    with collect(new_mm) as events:
        mmap_at(new_mm, 0, 1, stacked.open_stacked(inner))
    assert "step:rmap_unlock" not in steps(events)
    assert not any(isinstance(e, WarnOn) for e in events)


# -- compat error path: v4 unmaps and filters, mainline returns the raw error ----------


def test_v4_compat_failure_tries_to_unmap_and_filters(mm):
    def prepare(desc):
        mmap_action_remap_full(desc, 0x40)
        desc.action.error_hook = lambda err: errno.EAGAIN

    probe = Probe(prepare=prepare, mapped_errno=errno.ENOMEM)
    with collect(mm) as events, raises_errno(errno.EAGAIN):
        mmap_at(mm, 0, 1, stacked.open_stacked(probe_file(probe)))
    assert "step:unmap" in steps(events)
    assert "close" not in probe.names()  # the VMA was never in the tree
    assert layout(mm) == []


def test_mainline_compat_failure_is_raw_and_unmaps_nothing(make_mm):
    mm = make_mm("mainline")

    def prepare(desc):
        mmap_action_remap_full(desc, 0x40)
        desc.action.error_override = -errno.EAGAIN

    probe = Probe(prepare=prepare, mapped_errno=errno.ENOMEM)
    with collect(mm) as events, raises_errno(errno.ENOMEM):
        mmap_at(mm, 0, 1, stacked.open_stacked(probe_file(probe)))
    assert "step:unmap" not in steps(events)
    assert "close" not in probe.names()
    assert layout(mm) == []


def test_compat_inner_prepare_error_is_returned_unchanged(new_mm):
    def prepare(desc):
        raise OSError(errno.EPERM, "inner says no")

    probe = Probe(prepare=prepare)
    with raises_errno(errno.EPERM):
        mmap_at(new_mm, 0, 1, stacked.open_stacked(probe_file(probe)))
    assert layout(new_mm) == []
