"""refcount_bad vs refcount_good: where a driver may take its per-mapping reference.

The bad driver takes it in mmap_prepare and leaks whenever the range merges or mmap fails
after the hook; the good one takes it in ``mapped``/``open`` and balances over any sequence
of map / merge / split / munmap / failure / teardown.
"""

from __future__ import annotations

import errno

import pytest

from vmamodel.drivers import refcount_bad as bad
from vmamodel.drivers import refcount_good as good
from vmamodel.drivers.ledger import LedgerError
from vmamodel.inject import FAILURE_POINTS

from .util import RO, P, at, exit_mm, layout, mmap_at, raises_errno

# -- the leak detector: one test, run on both drivers -------------------------------------
#
# It must fail for the buggy driver and pass for the fixed one; the buggy run is a strict
# xfail, so a change that hides the leak (or breaks the good driver) fails the suite.

LEAKS = pytest.mark.xfail(
    strict=True,
    raises=LedgerError,
    reason="refcount_bad takes its reference in mmap_prepare, before the merge decision "
    "and before steps that can still fail: nothing ever drops it",
)
DRIVERS = [pytest.param("good", id="good"), pytest.param("bad", id="bad", marks=LEAKS)]


def open_teaching(which: str):
    if which == "good":
        dev = good.GoodDevice()
        return dev.ledger, good.open_device(dev)
    dev_bad = bad.BadDevice()
    return dev_bad.ledger, bad.open_device(dev_bad)


@pytest.mark.parametrize("which", DRIVERS)
def test_leak_detector_merges(new_mm, which):
    ledger, file = open_teaching(which)
    mmap_at(new_mm, 0, 2, file)
    mmap_at(new_mm, 4, 2, file)
    mmap_at(new_mm, 2, 2, file)  # merges into the first
    mmap_at(new_mm, 6, 2, file)  # merges into the second
    exit_mm(new_mm)
    ledger.assert_balanced()


@pytest.mark.parametrize("which", DRIVERS)
@pytest.mark.parametrize("point", ["vma_alloc", "vma_prealloc"])
def test_leak_detector_failure_after_the_hook(new_mm, which, point):
    ledger, file = open_teaching(which)
    mmap_at(new_mm, 0, 2, file, pgoff=100)
    with new_mm.inject(point), raises_errno(errno.ENOMEM):
        mmap_at(new_mm, 2, 2, file)
    with new_mm.inject(point), raises_errno(errno.ENOMEM):
        mmap_at(new_mm, 1, 2, file)  # MAP_FIXED over part of the first
    exit_mm(new_mm)
    ledger.assert_balanced()


def test_bad_leaks_when_the_range_merges(new_mm):
    dev = bad.BadDevice()
    file = bad.open_device(dev)
    mmap_at(new_mm, 0, 2, file)
    mmap_at(new_mm, 2, 2, file)
    assert layout(new_mm) == [(0, 4)]
    exit_mm(new_mm)
    assert dev.ledger.leaks() == {"ref": 1}
    assert dev.ledger.causes("acquire") == {"mmap_prepare": 2}
    assert dev.ledger.causes("release") == {"close": 1}


def test_good_balances_when_the_range_merges(new_mm):
    dev = good.GoodDevice()
    file = good.open_device(dev)
    mmap_at(new_mm, 0, 2, file)
    mmap_at(new_mm, 2, 2, file)
    assert layout(new_mm) == [(0, 4)]
    assert dev.refs == 1
    exit_mm(new_mm)
    dev.ledger.assert_balanced()


@pytest.mark.parametrize("point", ["vma_alloc", "vma_prealloc"])
def test_bad_leaks_when_mmap_fails_after_the_hook(new_mm, point):
    dev = bad.BadDevice()
    with new_mm.inject(point), raises_errno(errno.ENOMEM):
        mmap_at(new_mm, 0, 2, bad.open_device(dev))
    assert layout(new_mm) == []
    assert dev.ledger.leaks() == {"ref": 1}


@pytest.mark.parametrize("point", ["vma_alloc", "vma_prealloc"])
def test_good_takes_nothing_when_mmap_fails(new_mm, point):
    dev = good.GoodDevice()
    with new_mm.inject(point), raises_errno(errno.ENOMEM):
        mmap_at(new_mm, 0, 2, good.open_device(dev))
    dev.ledger.assert_balanced()
    assert dev.ledger.history() == []


def test_bad_does_not_leak_when_its_own_vma_is_closed_by_the_unmap(new_mm):
    # A failure after the VMA exists (mapped) unmaps it: close balances prepare's get.
    dev = bad.BadDevice()
    with new_mm.inject("mapped"):  # BadVmOps has no mapped: the point is not reached
        mmap_at(new_mm, 0, 2, bad.open_device(dev))
    exit_mm(new_mm)
    dev.ledger.assert_balanced()


def test_good_splits_and_unmaps_balance(new_mm):
    dev = good.GoodDevice()
    mmap_at(new_mm, 0, 8, good.open_device(dev))
    new_mm.mprotect(at(2), 2 * P, RO)
    new_mm.munmap(at(5), P)
    assert dev.refs == len(layout(new_mm))
    assert dev.ledger.causes("acquire") == {"mapped": 1, "open": 4}
    exit_mm(new_mm)
    dev.ledger.assert_balanced()


# -- every failure point ------------------------------------------------------------------


def scenario(mm, file):
    """Map, merge, map over an existing range, split and unmap - each may fail."""
    results = []
    for op in (
        lambda: mmap_at(mm, 0, 2, file),
        lambda: mmap_at(mm, 4, 2, file),
        lambda: mmap_at(mm, 2, 2, file),  # merges (with one neighbour at most: close)
        lambda: mmap_at(mm, 8, 2, file, pgoff=20),
        lambda: mmap_at(mm, 1, 2, file, pgoff=40),  # MAP_FIXED over existing VMAs
        lambda: mm.mprotect(at(4), P, RO),
        lambda: mm.munmap(at(9), P),
        lambda: mm.touch(at(0), write=True),
    ):
        try:
            op()
            results.append(0)
        except OSError as exc:
            results.append(exc.errno)
    return results


@pytest.mark.parametrize("point", sorted(FAILURE_POINTS))
@pytest.mark.parametrize("nth", [1, 2])
def test_good_balances_with_a_failure_at_every_point(new_mm, point, nth):
    dev = good.GoodDevice()
    with new_mm.inject(point, nth=nth) as rule:
        scenario(new_mm, good.open_device(dev))
    hazard = point == "mapped" and rule.fired
    # One reference per live VMA object, less the one close dropped without an acquire.
    assert dev.refs == len(layout(new_mm)) - hazard
    exit_mm(new_mm)
    if hazard:
        # close on the VMA whose mapped failed: a release without an acquire, the
        # series' documented hazard (mmap_action_finish()). Nothing leaks.
        assert dev.ledger.leaks() == {}
        underflows = dev.ledger.double_releases()
        assert underflows and {u.cause for u in underflows} == {"close"}
        assert dev.refs == -1  # exactly one release too many, over the whole run
    else:
        dev.ledger.assert_balanced()


@pytest.mark.parametrize("point", ["vma_alloc", "vma_prealloc", "munmap_gather", "mapped"])
def test_bad_is_unbalanced_somewhere_in_the_scenario(new_mm, point):
    dev = bad.BadDevice()
    with new_mm.inject(point):
        scenario(new_mm, bad.open_device(dev))
    exit_mm(new_mm)
    assert dev.ledger.leaks()  # the merge alone leaks one
