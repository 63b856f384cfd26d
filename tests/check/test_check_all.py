"""``vmamodel check all``: exactly the findings the drivers' notes document, and no other.

The checker knows nothing of the drivers; these are what it must find on its own:

- refcount_bad and the pre-series AFS conversion (9d5403b1036c) take their reference in
  ``mmap_prepare``: it leaks when the range merges and when mmap fails after the hook (VMA
  allocation, tree preallocation, or the outer legacy hook of a stacked file);
- stm: a remap failing at completion skips ``mapped`` (the PM get) but the unmap runs
  ``close`` (the put);
- vme_user: ``close`` dereferences the private pointer that a failed ``mapped`` or remap never
  set;
- the kernel's own: under v4 __vma_check_mmap_hook refuses every mmap of uio/TCMU and every
  stacked mmap of a driver with ``mapped``, after ``mapped`` took its reference (with a WARN);
  under v4 and mainline a stacked outer hook failing after the inner ``mapped`` frees the VMA
  without ``close``;
- if-hook-fails: ``close`` after a failed ``mapped`` unbalances refcount_good, AFS and stm, but
  their ``mapped`` never fails, so it is no driver finding.

Nothing for hpet, mtdchar, open-dice, the hv ring, uio_hv_generic or the vme slave.
"""

from __future__ import annotations

from .conftest import CheckAll

V4, ML, ALL3 = ("v4",), ("v4", "mainline"), ("6.18", "v4", "mainline")
WARN = "warn:WARN_ON_ONCE: __vma_check_mmap_hook"


def _kernel(target: str) -> set[tuple[str, str, str, str, str, tuple[str, ...]]]:
    return {
        (target, "kernel", "leak", "mapped", "check-hook", V4),
        (target, "kernel", "leak", "mapped", "compat-drop", ML),
        (target, "kernel", "warn", "mmap", WARN, V4),
    }


def _prepare_leaks(target: str) -> set[tuple[str, str, str, str, str, tuple[str, ...]]]:
    return {(target, "driver", "leak", "mmap_prepare", rule, ALL3)
            for rule in ("merge", "fail:vma_alloc", "fail:vma_prealloc", "compat-fail")}


def _hook_fails(target: str) -> tuple[str, str, str, str, str, tuple[str, ...]]:
    return target, "if-hook-fails", "close-without-mapped", "close", "fail:mapped", ML


EXPECTED = {
    *_prepare_leaks("/dev/bad0"),
    *_prepare_leaks("/afs/cell/file?form=buggy_prepare"),
    ("/dev/stm0", "driver", "close-without-mapped", "close", "fail:action_complete", ML),
    ("/dev/bus/vme/m0", "driver", "close-without-mapped", "close", "fail:action_complete", ML),
    ("/dev/bus/vme/m0", "driver", "close-without-mapped", "close", "fail:mapped", ML),
    ("/dev/uio0", "kernel", "leak", "mapped", "check-hook", V4),
    ("/dev/uio0", "kernel", "warn", "mmap", WARN, V4),
    ("/dev/uio0", "kernel", "leak", "mapped", "compat-drop", ("mainline",)),
    *_kernel("/dev/good0"), *_kernel("/afs/cell/file"), *_kernel("/dev/stm0"),
    *_kernel("/dev/bus/vme/m0"),
    _hook_fails("/dev/good0"), _hook_fails("/afs/cell/file"), _hook_fails("/dev/stm0"),
}


def test_check_all_finds_exactly_the_documented_findings(all_report: CheckAll) -> None:
    assert all_report.exit_code == 1  # the drivers with bugs
    found = {(f.target, f.origin, f.kind, f.hook, f.rule, tuple(f.profiles))
             for f in all_report.findings}
    assert found == EXPECTED


def test_the_driver_findings_are_the_drivers_with_bugs(all_report: CheckAll) -> None:
    assert {f.target for f in all_report.driver_findings} == {
        "/dev/bad0", "/afs/cell/file?form=buggy_prepare", "/dev/stm0", "/dev/bus/vme/m0"}


def test_every_reproducer_replays_to_its_finding(all_report: CheckAll) -> None:
    assert all(f.reproduced for f in all_report.findings)


def test_drivers_that_need_mapped_or_actions_are_not_explored_under_6_18(
        all_report: CheckAll) -> None:
    skipped = {(target, profile) for target, profile, _ in all_report.skipped}
    assert ("/dev/good0", "6.18") in skipped and ("/dev/hpet", "6.18") in skipped
    assert not {p for _, p in skipped} - {"6.18"}
    assert ("/dev/bad0", "6.18") not in skipped


def test_the_stm_finding_names_the_rule_and_the_state(all_report: CheckAll) -> None:
    stm = next(f for f in all_report.driver_findings if f.target == "/dev/stm0")
    assert "mmap_action_finish()" in stm.sentence
    assert "pm_runtime" in stm.detail and "nothing held" in stm.detail
    assert "#! inject: action_complete nth=1" in stm.reproducer
    assert any("hook=close" in line for line in stm.trace)
