"""mmap_action_complete / mmap_action_finish ordering and error filtering (mm/util.c).

v4: action -> mapped -> success_hook -> rmap unlock -> (error) unmap -> error_hook.
mainline: action -> mapped -> rmap unlock -> (error) unmap -> error_override.
"""

from __future__ import annotations

import errno

from vmamodel.constants import VM, VMA_REMAP_FLAGS
from vmamodel.events import WarnOn
from vmamodel.mmap_action import (
    KernelPage,
    mmap_action_ioremap_full,
    mmap_action_map_kernel_pages,
    mmap_action_map_kernel_pages_full,
    mmap_action_remap,
    mmap_action_remap_full,
)

from .probe import Probe, probe_file
from .util import at, collect, hook_calls, layout, mmap_at, raises_errno, steps, vma_at


def subsequence(needle, hay):
    it = iter(hay)
    return all(item in it for item in needle)


def remap_with(**action_fields):
    def prepare(desc):
        mmap_action_remap_full(desc, 0x500)
        for name, value in action_fields.items():
            setattr(desc.action, name, value)

    return prepare


def test_action_then_mapped_then_success_hook(mm):
    seen = []

    def success(vma):
        seen.append(vma.vm_private_data)

    probe = Probe(prepare=remap_with(success_hook=success), mapped_result="priv")
    with collect(mm) as events:
        mmap_at(mm, 0, 2, probe_file(probe))
    order = steps(events)
    assert subsequence(
        ["hook:mmap_prepare", "step:prepare", "step:remap", "step:complete", "hook:mapped",
         "hook:success_hook"],
        order,
    )
    assert seen == ["priv"]  # success_hook sees what mapped stored


def test_action_failure_skips_mapped_but_close_runs(new_mm):
    probe = Probe(prepare=remap_with())
    with new_mm.inject("action_complete"), raises_errno(errno.ENOMEM):
        mmap_at(new_mm, 0, 2, probe_file(probe))
    assert probe.names() == ["mmap_prepare", "close"]
    assert layout(new_mm) == []


def test_success_hook_failure_unmaps(mm):
    def success(vma):
        raise OSError(errno.EBUSY, "no")

    probe = Probe(prepare=remap_with(success_hook=success))
    with raises_errno(errno.EBUSY):
        mmap_at(mm, 0, 2, probe_file(probe))
    assert probe.names() == ["mmap_prepare", "mapped", "close"]
    assert layout(mm) == []


def test_error_hook_replaces_the_error_after_the_unmap(mm):
    seen = []

    def error_hook(err):
        seen.append((err, list(probe.names())))
        return errno.EAGAIN

    probe = Probe(prepare=remap_with(error_hook=error_hook), mapped_errno=errno.ENOMEM)
    with collect(mm) as events, raises_errno(errno.EAGAIN):
        mmap_at(mm, 0, 2, probe_file(probe))
    assert seen == [(errno.ENOMEM, ["mmap_prepare", "mapped", "close"])]
    assert subsequence(["hook:mapped", "step:unmap", "hook:close", "hook:error_hook"],
                       steps(events))


def test_error_hook_not_called_on_success(mm):
    calls = []
    probe = Probe(prepare=remap_with(error_hook=lambda err: calls.append(err) or err))
    mmap_at(mm, 0, 1, probe_file(probe))
    assert calls == []


def test_error_hook_clearing_the_error_makes_mmap_succeed_without_a_vma(mm):
    # VM_WARN_ON_ONCE(!err) in v4 mmap_action_finish, but the 0 is returned.
    probe = Probe(prepare=remap_with(error_hook=lambda err: 0), mapped_errno=errno.ENOMEM)
    with collect(mm) as events:
        addr = mmap_at(mm, 0, 2, probe_file(probe))
    assert addr == at(0)
    assert layout(mm) == []
    assert any(isinstance(e, WarnOn) and "error_hook" in e.message for e in events)


def test_mainline_error_override_replaces_the_error(make_mm):
    mm = make_mm("mainline")
    probe = Probe(prepare=remap_with(error_override=-errno.EAGAIN), mapped_errno=errno.ENOMEM)
    with raises_errno(errno.EAGAIN):
        mmap_at(mm, 0, 2, probe_file(probe))
    assert probe.names() == ["mmap_prepare", "mapped", "close"]


def test_mainline_error_override_unused_on_success(make_mm):
    mm = make_mm("mainline")
    probe = Probe(prepare=remap_with(error_override=-errno.EAGAIN))
    assert mmap_at(mm, 0, 2, probe_file(probe)) == at(0)


def test_rmap_unlock_before_the_unmap(mm):
    probe = Probe(
        prepare=remap_with(hide_from_rmap_until_complete=True), mapped_errno=errno.ENOMEM
    )
    with collect(mm) as events, raises_errno(errno.ENOMEM):
        mmap_at(mm, 0, 2, probe_file(probe))
    assert subsequence(["hook:mapped", "step:rmap_unlock", "step:unmap", "hook:close"],
                       steps(events))


def test_rmap_unlock_after_success_hook(mm):
    probe = Probe(
        prepare=remap_with(hide_from_rmap_until_complete=True, success_hook=lambda vma: None)
    )
    with collect(mm) as events:
        mmap_at(mm, 0, 2, probe_file(probe))
    assert subsequence(["hook:mapped", "hook:success_hook", "step:rmap_unlock"], steps(events))


def test_remap_records_the_pages(new_mm):
    probe = Probe(prepare=remap_with())
    with collect(new_mm) as events:
        mmap_at(new_mm, 0, 2, probe_file(probe))
    [remap] = [e for e in events if getattr(e, "step", "") == "remap"]
    assert "pfn=0x500" in remap.detail and "tracked=True" in remap.detail
    assert {at(0), at(1)} <= new_mm.pages.present


def test_success_hook_traced_with_its_name(mm):
    def my_success_hook(vma):
        return None

    probe = Probe(prepare=remap_with(success_hook=my_success_hook))
    with collect(mm) as events:
        mmap_at(mm, 0, 1, probe_file(probe))
    [call] = hook_calls(events, "success_hook")
    assert "my_success_hook" in call.owner and call.vma_id == vma_at(mm, 0).id


# -- completing each action type on a real mmap -------------------------------------------


def test_map_kernel_pages_inserts_each_page_then_mapped(new_mm):
    pages = [KernelPage(0x100), KernelPage(0x200)]
    probe = Probe(prepare=lambda desc: mmap_action_map_kernel_pages_full(desc, pages))
    with collect(new_mm) as events:
        mmap_at(new_mm, 0, 2, probe_file(probe))
    assert steps(events)[1:] == ["step:prepare", "step:insert_page", "step:insert_page",
                                 "step:complete", "hook:mapped"]
    assert new_mm.pages.present == {at(0), at(1)}
    assert vma_at(new_mm, 0).vm_flags & VM.MIXEDMAP  # VM_SPECIAL: never merges


def test_map_kernel_pages_stops_at_an_unsuitable_page_and_unmaps(new_mm):
    # validate_page_before_insert refuses an anonymous page: EINVAL, the pages inserted
    # before it are zapped with the VMA, and close runs (mapped never did).
    pages = [KernelPage(0x100), KernelPage(0x200, "anon")]
    probe = Probe(prepare=lambda desc: mmap_action_map_kernel_pages_full(desc, pages))
    with collect(new_mm) as events, raises_errno(errno.EINVAL):
        mmap_at(new_mm, 0, 2, probe_file(probe))
    assert steps(events)[1:] == ["step:prepare", "step:insert_page", "step:complete",
                                 "step:unmap", "hook:close"]
    assert layout(new_mm) == [] and not new_mm.pages.present


def test_map_kernel_pages_at_an_offset_inside_the_range(new_mm):
    probe = Probe(prepare=lambda desc: mmap_action_map_kernel_pages(
        desc, desc.start + 4096, [KernelPage(7)], 1))
    mmap_at(new_mm, 0, 3, probe_file(probe))
    assert new_mm.pages.present == {at(1)}


def test_io_remap_end_to_end(new_mm):
    probe = Probe(prepare=lambda desc: mmap_action_ioremap_full(desc, 0x900))
    with collect(new_mm) as events:
        mmap_at(new_mm, 0, 2, probe_file(probe))
    [prepare] = [e for e in events if getattr(e, "step", "") == "prepare"]
    assert (prepare.action, prepare.detail.split()[1]) == ("IO_REMAP_PFN", "REMAP_PFN")
    assert vma_at(new_mm, 0).vm_flags & VMA_REMAP_FLAGS == VMA_REMAP_FLAGS


def test_partial_shared_remap_is_not_tracked(new_mm):
    probe = Probe(prepare=lambda desc: mmap_action_remap(desc, desc.start, 0x900, 4096))
    with collect(new_mm) as events:
        mmap_at(new_mm, 0, 2, probe_file(probe))
    [remap] = [e for e in events if getattr(e, "step", "") == "remap"]
    assert "tracked=False" in remap.detail
    assert new_mm.pages.present == {at(0)}
