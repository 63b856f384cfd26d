"""The profile table (vmamodel.profiles): one test per row, each run under every profile.

Every test checks two things: the behaviour the row switches, observed through the model,
matches the table; and the table matches the kernel's three code states (6.18, v4,
mainline: docs/architecture.md section 18), written out per profile in the
parametrisation. ``test_every_row_has_a_test`` fails when a row is added without a test
here.
"""

from __future__ import annotations

import dataclasses
import errno

import pytest

from vmamodel.constants import VM
from vmamodel.driver_error import DriverError
from vmamodel.drivers import stacked
from vmamodel.file import VMA_DUMMY_VM_OPS, File, FileOperations
from vmamodel.mmap_action import mmap_action_remap_full
from vmamodel.profiles import DEFAULT_PROFILE, PROFILES, KernelProfile, get_profile

from .probe import Probe, ProbeOps, probe_file
from .util import collect, errno_of, layout, mmap_at, steps, vma_at

TESTED_ROWS: set[str] = set()


def row(name: str, **expected: bool) -> pytest.MarkDecorator:
    """Parametrise over the profiles with the spec's value of row ``name`` for each."""
    TESTED_ROWS.add(name)
    assert set(expected) == {"v6_18", "v4", "mainline"}
    values = [("6.18", expected["v6_18"]), ("v4", expected["v4"]),
              ("mainline", expected["mainline"])]
    return pytest.mark.parametrize(("profile", "expected"), values, ids=[p for p, _ in values])


def assert_row(mm, name: str, expected: bool, observed: bool) -> None:
    assert getattr(mm.profile, name) is expected, f"table row {name} of {mm.profile.name}"
    assert observed is expected, f"behaviour of {name} under {mm.profile.name}"


def outcome(fn) -> str:
    """"ok", "errno N" or "no such field" (a DriverError from a TypeError: the driver would
    not compile)."""
    try:
        err = errno_of(fn)
    except DriverError as exc:
        assert isinstance(exc.__cause__, TypeError)
        return "no such field"
    return "ok" if err == 0 else f"errno {err}"


@row("has_actions", v6_18=False, v4=True, mainline=True)
def test_has_actions(make_mm, profile, expected):
    mm = make_mm(profile)

    def prepare(desc):
        mmap_action_remap_full(desc, 0x42)

    result = outcome(lambda: mmap_at(mm, 0, 1, File("/dev/r", f_op=Prepare(prepare))))
    remapped = result == "ok" and bool(vma_at(mm, 0).vm_flags & VM.PFNMAP)
    assert result == ("ok" if expected else "no such field")
    assert_row(mm, "has_actions", expected, remapped)


@row("has_mapped", v6_18=False, v4=True, mainline=True)
def test_has_mapped(make_mm, profile, expected):
    mm = make_mm(profile)
    probe = Probe()
    result = outcome(lambda: mmap_at(mm, 0, 1, probe_file(probe)))
    assert result == ("ok" if expected else "no such field")
    assert_row(mm, "has_mapped", expected, "mapped" in probe.names())


@row("success_error_hooks", v6_18=False, v4=True, mainline=False)
def test_success_error_hooks(make_mm, profile, expected):
    mm = make_mm(profile)
    calls = []

    def prepare(desc):
        desc.action.success_hook = calls.append

    result = outcome(lambda: mmap_at(mm, 0, 1, File("/dev/s", f_op=Prepare(prepare))))
    assert result == ("ok" if expected else "no such field")
    assert_row(mm, "success_error_hooks", expected, len(calls) == 1)


@row("error_override", v6_18=False, v4=False, mainline=True)
def test_error_override(make_mm, profile, expected):
    mm = make_mm(profile)

    def prepare(desc):
        desc.action.error_override = -errno.EAGAIN

    probe = Probe(prepare=prepare, mapped_errno=errno.ENOMEM)
    result = outcome(lambda: mmap_at(mm, 0, 1, probe_file(probe)))
    assert result == (f"errno {errno.EAGAIN}" if expected else "no such field")
    assert_row(mm, "error_override", expected, result == f"errno {errno.EAGAIN}")


class LegacyWithMapped(FileOperations):
    """A legacy ``.mmap`` leaving ops whose ``mapped`` is set (what uio does for TCMU)."""

    def __init__(self, probe: Probe) -> None:
        self.ops = ProbeOps(probe)

    def mmap(self, file, vma):
        vma.vm_ops = self.ops


@row("legacy_mapped_check", v6_18=False, v4=True, mainline=False)
def test_legacy_mapped_check(make_mm, profile, expected):
    mm = make_mm(profile)
    probe = Probe()
    result = outcome(lambda: mmap_at(mm, 0, 1, File("/dev/l", f_op=LegacyWithMapped(probe))))
    assert probe.calls == []  # the core never calls mapped for a legacy .mmap
    assert_row(mm, "legacy_mapped_check", expected, result == f"errno {errno.EINVAL}")
    # 6.18 has no mapped member at all: such ops would not compile there.
    assert result in ("ok", f"errno {errno.EINVAL}", "no such field")
    assert (result == "no such field") is (profile == "6.18")
    assert layout(mm) == ([(0, 1)] if result == "ok" else [])


@row("compat_unmaps_on_error", v6_18=False, v4=True, mainline=False)
def test_compat_unmaps_on_error(make_mm, profile, expected):
    mm = make_mm(profile)
    probe = Probe(prepare=lambda desc: mmap_action_remap_full(desc, 0x42))
    inner = probe_file(probe) if mm.profile.has_actions else File("/l", f_op=Prepare(None))
    with collect(mm) as events, mm.inject("action_complete"):
        result = outcome(lambda: mmap_at(mm, 0, 1, stacked.open_stacked(inner)))
    assert result == ("ok" if profile == "6.18" else f"errno {errno.ENOMEM}")
    assert_row(mm, "compat_unmaps_on_error", expected, "step:unmap" in steps(events))
    assert layout(mm) == ([(0, 1)] if profile == "6.18" else [])


@row("compat_flags_or_only", v6_18=True, v4=False, mainline=False)
def test_compat_flags_or_only(make_mm, profile, expected):
    mm = make_mm(profile)

    def prepare(desc):
        desc.vm_flags &= ~VM.MAYWRITE

    mmap_at(mm, 0, 1, stacked.open_stacked(File("/lower", f_op=Prepare(prepare))))
    kept = bool(vma_at(mm, 0).vm_flags & VM.MAYWRITE)
    assert_row(mm, "compat_flags_or_only", expected, kept)


@row("compat_prefills_vm_ops", v6_18=False, v4=False, mainline=True)
def test_compat_prefills_vm_ops(make_mm, profile, expected):
    mm = make_mm(profile)
    seen = []
    mmap_at(mm, 0, 1, stacked.open_stacked(File("/lower", f_op=Prepare(
        lambda desc: seen.append(desc.vm_ops)))))
    assert seen[0] in (None, VMA_DUMMY_VM_OPS)
    assert_row(mm, "compat_prefills_vm_ops", expected, seen[0] is VMA_DUMMY_VM_OPS)
    # and what the write-back leaves on the VMA when the inner hook set no ops
    assert vma_at(mm, 0).vm_ops is seen[0]


class Prepare(FileOperations):
    """An mmap_prepare hook from a function (or one that does nothing)."""

    def __init__(self, hook) -> None:
        self.hook = hook

    def mmap_prepare(self, desc):
        if self.hook is not None:
            self.hook(desc)


def test_every_row_has_a_test():
    rows = {f.name for f in dataclasses.fields(KernelProfile)} - {"name"}
    assert rows == TESTED_ROWS


def test_the_default_is_v4_and_names_match(make_mm):
    assert DEFAULT_PROFILE == "v4"
    assert make_mm().profile is PROFILES["v4"]
    assert all(profile.name == key for key, profile in PROFILES.items())
    assert get_profile(PROFILES["mainline"]) is PROFILES["mainline"]
    with pytest.raises(ValueError, match="unknown kernel profile"):
        get_profile("v5")
