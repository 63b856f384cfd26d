"""Planted bugs: a correct counting driver has no finding of its own, and each variant with a
bug of a different class is found (by the finding named here, among others)."""

from __future__ import annotations

import pytest

from vmamodel.check import Report, run_check

from . import planted

#: variant -> a (kind, hook, rule) its findings must include
EXPECTED = {
    "ref_in_prepare": ("leak", "mmap_prepare", "merge"),
    "open_missing_ref": ("over-release", "close", "teardown"),
    "forgot_close": ("leak", "mapped", "teardown"),
    "double_release": ("over-release", "close", "teardown"),
    "key_error": ("crash", "mapped", "crash"),
    "mapped_fails": ("close-without-mapped", "close", "fail:mapped"),
    "private_lost": ("private-data-lost", "close", "private-lost"),
    "global_device": ("state-not-restored", "close", "merge"),
    "mremap_counts": ("leak", "mremap", "teardown"),
    "edits_range": ("warn", "mmap_prepare", "warn:mmap_prepare changed desc->start/end"),
    "legacy_error_path": ("leak", "mmap", "legacy-fail"),
    "may_split": ("leak", "may_split", "fail:split_alloc"),
}


def test_at_least_ten_bug_classes() -> None:
    assert len(planted.PLANTED) >= 10 and set(planted.PLANTED) == set(EXPECTED)


def test_the_correct_driver_has_no_finding_of_its_own(
        planted_reports: dict[str, Report]) -> None:
    report = planted_reports["correct"]
    assert report.driver_findings == []
    # What remains is the kernel's, and the API's hazard when mapped could fail.
    assert {f.origin for f in report.findings} == {"kernel", "if-hook-fails"}


@pytest.mark.parametrize("name", sorted(planted.PLANTED))
def test_each_planted_bug_is_found(name: str, planted_reports: dict[str, Report]) -> None:
    report = planted_reports[name]
    found = {(f.kind, f.hook, f.rule) for f in report.driver_findings}
    assert EXPECTED[name] in found, sorted(found)
    assert all(f.reproduced for f in report.findings)


def test_a_factory_can_say_where_the_state_is() -> None:
    report = run_check(planted.open_extra_state, profiles=["mainline"], jobs=1)
    leak = next(f for f in report.driver_findings if f.rule == "teardown")
    assert (leak.kind, leak.hook) == ("leak", "mapped")
    assert leak.detail == "state.refs: 0 -> 1"
    assert leak.reproduced
