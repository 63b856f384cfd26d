"""The event trace (vmamodel.events): subscription, its cost when unused, and the merge
rules it names."""

from __future__ import annotations

import errno

import pytest

from vmamodel import memfd_create
from vmamodel.constants import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE
from vmamodel.drivers import hpet, stacked
from vmamodel.drivers import refcount_good as good
from vmamodel.events import Event, HookCall, MergeAttempt, MergeRefused, Tracer
from vmamodel.inject import FAILURE_POINTS

from .probe import Probe, probe_file
from .util import RO, RW, P, at, collect, mmap_at


def test_subscribe_and_unsubscribe(new_mm):
    seen: list[Event] = []
    assert not new_mm.tracer.active
    unsubscribe = new_mm.tracer.subscribe(seen.append)
    assert new_mm.tracer.active
    mmap_at(new_mm, 0, 1, probe_file(Probe()))
    count = len(seen)
    assert count and seen[0].kind == "Syscall"
    unsubscribe()
    assert not new_mm.tracer.active
    mmap_at(new_mm, 4, 1, probe_file(Probe()))
    assert len(seen) == count


def test_two_listeners_see_the_same_events(new_mm):
    first: list[Event] = []
    with collect(new_mm) as second:
        new_mm.tracer.subscribe(first.append)
        mmap_at(new_mm, 0, 1, probe_file(Probe()))
    assert first == second


def busy_workload(mm) -> None:
    """Everything that emits: hooks, merges, refusals, splits, actions, warnings,
    injected failures, compat paths, unmaps."""
    dev = good.GoodDevice()
    file = good.open_device(dev)
    mmap_at(mm, 0, 2, file)
    mmap_at(mm, 2, 2, file)
    mmap_at(mm, 6, 2, file, pgoff=40)
    mm.mprotect(at(1), P, RO)
    mmap_at(mm, 20, 1, hpet.open_device(hpet.HpetDevice()), prot=RO, pgoff=0)
    mmap_at(mm, 21, 1, hpet.open_device(hpet.HpetDevice()), prot=RO, pgoff=0)
    mmap_at(mm, 28, 2, memfd_create("trace", 1 << 20))
    mm.mmap(at(30), P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    mm.touch(at(30), write=True)
    for point in sorted(FAILURE_POINTS):
        with mm.inject(point):
            try:
                mmap_at(mm, 40, 2, file, pgoff=80)
                mm.munmap(at(40), P)
            except OSError:
                pass

    def edit(desc):
        desc.start += P  # ignored by the kernel, with a warning

    mmap_at(mm, 50, 1, probe_file(Probe(prepare=edit)))
    try:
        mmap_at(mm, 60, 1, stacked.open_stacked(good.open_device(good.GoodDevice())))
    except OSError as exc:
        assert exc.errno == errno.EINVAL or mm.profile.name == "mainline"
    mm.munmap(at(0), 64 * P)


def test_nothing_is_emitted_when_nobody_listens(new_mm, monkeypatch):
    # Every emit site is guarded by tracer.active, so no event object is even built.
    def refuse(self: Tracer, event: Event) -> None:
        raise AssertionError(f"emitted without a listener: {event!r}")

    monkeypatch.setattr(Tracer, "emit", refuse)
    busy_workload(new_mm)


def test_the_same_workload_emits_when_listened_to(new_mm):
    with collect(new_mm) as events:
        busy_workload(new_mm)
    kinds = {e.kind for e in events}
    assert {"Syscall", "SyscallReturn", "HookCall", "MergeAttempt", "MergeRefused", "Split",
            "VmaCreated", "VmaRemoved", "ActionStep", "FaultInjected", "WarnOn",
            "AnonVmaAssigned"} <= kinds


def test_a_close_hook_stops_the_removal_of_next(new_mm):
    # A range between two VMAs whose ops have close merges with prev only
    # (vma_merge_new_range() in mm/vma.c).
    probe = Probe()
    file = probe_file(probe)
    mmap_at(new_mm, 0, 2, file)
    mmap_at(new_mm, 4, 2, file)
    with collect(new_mm) as events:
        mmap_at(new_mm, 2, 2, file)
    refusals = [(e.side, e.rule) for e in events if isinstance(e, MergeRefused)]
    assert refusals == [("next", "close hook: next cannot be removed")]
    [merge] = [e for e in events if isinstance(e, MergeAttempt)]
    assert merge.merged and merge.removed == ()


@pytest.mark.parametrize(("other", "rule"),
                         [("file", "vm_file"), ("pgoff", "vm_pgoff not contiguous")])
def test_refusal_rules_are_named(new_mm, other, rule):
    file = probe_file(Probe())
    mmap_at(new_mm, 0, 2, file)
    second = probe_file(Probe()) if other == "file" else file
    with collect(new_mm) as events:
        mmap_at(new_mm, 2, 2, second, pgoff=2 if other == "file" else 9)
    assert [(e.side, e.rule) for e in events if isinstance(e, MergeRefused)] == [("prev", rule)]


def test_hook_calls_carry_the_vma_and_the_errno(new_mm):
    probe = Probe(mapped_errno=errno.EIO)
    with collect(new_mm) as events, pytest.raises(OSError):
        mmap_at(new_mm, 0, 1, probe_file(probe))
    calls = [(e.hook, e.errno) for e in events if isinstance(e, HookCall)]
    assert calls == [("mmap_prepare", 0), ("mapped", errno.EIO), ("close", 0)]
    mapped = next(e for e in events if isinstance(e, HookCall) and e.hook == "mapped")
    close = next(e for e in events if isinstance(e, HookCall) and e.hook == "close")
    assert mapped.vma_id == close.vma_id is not None
