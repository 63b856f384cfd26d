"""vm_ops->mapped (v4 08/21): when it is called, with what, and what its result does."""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import MAP_PRIVATE, PROT_READ, PROT_WRITE
from vmamodel.driver_error import DriverError
from vmamodel.drivers import refcount_good as good
from vmamodel.file import File
from vmamodel.mmap_action import mmap_action_remap_full

from .probe import Probe, probe_file
from .util import PRIVATE_FIXED, P, at, collect, hook_calls, layout, mmap_at, raises_errno, vma_at


def test_mapped_called_once_with_the_final_range_pgoff_and_file(new_mm):
    probe = Probe()
    file = probe_file(probe)
    mmap_at(new_mm, 0, 4, file, pgoff=2)
    assert probe.names() == ["mmap_prepare", "mapped"]
    assert probe.calls[1][:5] == ("mapped", at(0), at(4), 2, file)


def test_mapped_sees_the_pgoff_the_hook_chose(new_mm):
    def prepare(desc):
        desc.pgoff = 40

    probe = Probe(prepare=prepare)
    mmap_at(new_mm, 0, 2, probe_file(probe), pgoff=2)
    assert probe.calls[-1][3] == 40


def test_mapped_sees_the_cow_remap_pgoff(new_mm):
    # A private writable remap replaces pgoff by the first PFN (remap_pfn_range_prepare).
    probe = Probe(prepare=lambda desc: mmap_action_remap_full(desc, 0x1234))
    mmap_at(new_mm, 0, 2, probe_file(probe), flags=PRIVATE_FIXED)
    assert probe.calls[-1][3] == 0x1234
    assert vma_at(new_mm, 0).vm_pgoff == 0x1234


def test_mapped_sees_the_file_the_hook_swapped_in(new_mm):
    other = File("/dev/other")

    def prepare(desc):
        desc.vm_file = other

    probe = Probe(prepare=prepare)
    mmap_at(new_mm, 0, 1, probe_file(probe))
    assert probe.calls[-1][4] is other


def test_mapped_not_called_when_the_range_merges(new_mm):
    probe = Probe()
    file = probe_file(probe)
    mmap_at(new_mm, 0, 2, file)
    mmap_at(new_mm, 2, 2, file)  # contiguous pgoff: merges into the first VMA
    assert layout(new_mm) == [(0, 4)]
    assert probe.names() == ["mmap_prepare", "mapped", "mmap_prepare"]


def test_mapped_not_called_for_split_pieces(new_mm):
    probe = Probe()
    mmap_at(new_mm, 0, 4, probe_file(probe))
    new_mm.mprotect(at(1), P, PROT_READ)
    new_mm.munmap(at(3), P)
    assert probe.names().count("mapped") == 1
    assert probe.names().count("open") == 3  # two for the mprotect, one for the munmap


def test_failing_mapped_leaves_no_vma_and_returns_its_errno(new_mm):
    probe = Probe(mapped_errno=errno.ENOSPC)
    with raises_errno(errno.ENOSPC):
        mmap_at(new_mm, 0, 2, probe_file(probe))
    assert layout(new_mm) == []
    assert new_mm.map_count == 0


def test_failing_mapped_vma_is_closed_by_the_unmap(new_mm):
    # mmap_action_finish() in mm/util.c: close runs on a VMA whose mapped failed.
    probe = Probe(mapped_errno=errno.ENOMEM)
    with raises_errno(errno.ENOMEM):
        mmap_at(new_mm, 0, 2, probe_file(probe))
    assert probe.names() == ["mmap_prepare", "mapped", "close"]


def test_failing_mapped_private_store_is_discarded(new_mm):
    def prepare(desc):
        desc.private_data = "from prepare"

    probe = Probe(prepare=prepare, mapped_result="from mapped", mapped_errno=errno.EIO)
    with raises_errno(errno.EIO):
        mmap_at(new_mm, 0, 1, probe_file(probe))
    assert probe.calls[-1][0] == "close"
    assert probe.calls[-1][4] == "from prepare"


def test_mapped_fixed_over_existing_failure_leaves_a_hole(new_mm):
    probe = Probe()
    file = probe_file(probe)
    mmap_at(new_mm, 0, 4, file, pgoff=100)
    probe.mapped_errno = errno.ENOMEM
    with raises_errno(errno.ENOMEM):
        mmap_at(new_mm, 1, 2, file)
    assert layout(new_mm) == [(0, 1), (3, 4)]


def test_mapped_sets_private_data(new_mm):
    dev = good.GoodDevice()
    mmap_at(new_mm, 0, 2, good.open_device(dev), pgoff=5)
    handle = vma_at(new_mm, 0).vm_private_data
    assert isinstance(handle, good.MappingHandle)
    assert (handle.start, handle.end, handle.pgoff) == (at(0), at(2), 5)


def test_mapped_receives_the_private_data_prepare_set(new_mm):
    def prepare(desc):
        desc.private_data = token

    token = object()
    probe = Probe(prepare=prepare)
    mmap_at(new_mm, 0, 1, probe_file(probe))
    assert probe.calls[-1][5] is token
    assert vma_at(new_mm, 0).vm_private_data is token  # unchanged Ref: untouched


def test_mapped_hook_call_is_traced(new_mm):
    probe = Probe()
    with collect(new_mm) as events:
        mmap_at(new_mm, 0, 1, probe_file(probe))
    [call] = hook_calls(events, "mapped")
    assert call.owner == "ProbeOps" and call.errno == 0
    assert call.vma_id == vma_at(new_mm, 0).id


def test_mapped_injected_failure_skips_the_hook(new_mm):
    probe = Probe()
    with new_mm.inject("mapped"), raises_errno(errno.ENOMEM):
        mmap_at(new_mm, 0, 1, probe_file(probe))
    assert probe.names() == ["mmap_prepare", "close"]


def test_private_data_of_a_merge_target_is_overwritten(new_mm):
    # set_vma_user_defined_fields() writes desc->private_data into a merge target too:
    # a driver that keeps per-mapping state in vm_private_data loses it on a merge.
    dev = good.GoodDevice()
    file = good.open_device(dev)
    mmap_at(new_mm, 0, 2, file)
    assert vma_at(new_mm, 0).vm_private_data is not None
    mmap_at(new_mm, 2, 2, file)
    assert layout(new_mm) == [(0, 4)]
    assert vma_at(new_mm, 0).vm_private_data is None
    assert dev.refs == 1


def test_6_18_never_calls_mapped_and_refuses_drivers_that_need_it(make_mm):
    mm = make_mm("6.18")
    with pytest.raises(DriverError) as info:  # would not compile: a driver bug
        mmap_at(mm, 0, 1, good.open_device(good.GoodDevice()))
    assert isinstance(info.value.__cause__, TypeError)
    assert layout(mm) == []


def test_mapped_private_mapping(new_mm):
    probe = Probe()
    new_mm.mmap(at(0), P, PROT_READ | PROT_WRITE, MAP_PRIVATE, probe_file(probe), 0)
    assert probe.names() == ["mmap_prepare", "mapped"]
