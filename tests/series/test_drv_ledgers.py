"""Every counting driver model's ledger after map, merge, split, munmap, a failure at every
injected point, and exit - in every form, under v4 and mainline.

A ledger balances unless the path is one of the anomalies docs/drivers.md documents; each
of those is asserted exactly here (docs/drivers.md section 13 lists them):

- stm (new): a failed action or ``mapped`` skips the PM get but the unmap runs ``close``:
  one put too many;
- vme_user (new): the same two failures leave ``close`` with no private struct: a NULL
  dereference in the kernel (flagged);
- afs (new), refcount_good: an injected ``mapped`` failure (their real hooks cannot fail)
  still runs ``close``: one release too many;
- tcmu (new, v4 only): __vma_check_mmap_hook fails every mmap after the inner ``mapped``
  took its kref, and the VMA is freed without ``close``: one kref leaked per attempt.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from vmamodel import AddressSpace
from vmamodel.drivers import afs, stm, tcmu, uio, vme_user
from vmamodel.drivers import refcount_good as good
from vmamodel.drivers.ledger import Ledger
from vmamodel.events import Split
from vmamodel.inject import FAILURE_POINTS

from .util import RO, SHARED_FIXED, P, at, collect, exit_mm, layout

PAGES = 4  # every mapping of the scenario: stm channels, tcmu mmap_pages


@dataclass
class Subject:
    """One driver in one form: its ledger, how to open a file, and the resource name."""

    name: str
    form: str
    ledger: Ledger
    open: Callable[[], object]
    resource: str
    #: the mapping's file offset (in pages) at a test page; 0 for drivers that need it
    offset: Callable[[int], int] = lambda page: 0
    #: the count equals the number of live VMA objects (false for vme_user's per-mapping
    #: struct)
    per_vma: bool = True


def stm_subject(form: str) -> Subject:
    dev = stm.StmDevice()
    return Subject("stm", form, dev.ledger,
                   lambda: stm.open_device(dev, nr_chans=PAGES, form=form), stm.PM)


def vme_subject(form: str) -> Subject:
    image = vme_user.VmeImage(vme_user.MASTER_MINOR, vme_user.VmeResource())
    bridge = vme_user.VmeUserBridge(images={0: image})
    return Subject("vme_user", form, bridge.ledger,
                   lambda: vme_user.open_device(bridge, 0, form=form), vme_user.PRIV,
                   per_vma=False)


def tcmu_subject(form: str) -> Subject:
    udev = tcmu.TcmuDevice(mmap_pages=PAGES)
    dev = tcmu.tcmu_uio_device(udev, form=form)
    return Subject("tcmu", form, udev.ledger, lambda: uio.open_device(dev), tcmu.KREF)


def afs_subject(form: str) -> Subject:
    vnode = afs.AfsVnode(afs.AfsVolume())
    file = afs.open_file(vnode, form=form)
    return Subject("afs", form, vnode.ledger, lambda: file, afs.MMAP, lambda page: page)


def good_subject(form: str) -> Subject:
    dev = good.GoodDevice()
    file = good.open_device(dev)
    return Subject("refcount_good", form, dev.ledger, lambda: file, good.REF,
                   lambda page: page)


SUBJECTS: dict[str, Callable[[str], Subject]] = {
    "stm": stm_subject,
    "vme_user": vme_subject,
    "tcmu": tcmu_subject,
    "afs": afs_subject,
    "refcount_good": good_subject,
}
CASES = [
    ("stm", "new"), ("stm", "old"), ("vme_user", "new"), ("vme_user", "old"),
    ("tcmu", "new"), ("tcmu", "old"), ("afs", "new"), ("afs", "legacy"),
    ("refcount_good", "new"),
]


def scenario(mm: AddressSpace, subject: Subject) -> list[int]:
    """Map three ranges (the third touches the first: merges where the driver allows),
    map over part of the second, split by mprotect, unmap a piece and split by munmap."""

    def map_at(page: int) -> None:
        file = subject.open()
        mm.mmap(at(page), PAGES * P, RO, SHARED_FIXED, file, subject.offset(page) * P)

    ops: list[Callable[[], object]] = [
        lambda: map_at(0),
        lambda: map_at(8),
        lambda: map_at(4),
        lambda: map_at(10),
        lambda: mm.mprotect(at(1), P, 0),
        lambda: mm.munmap(at(3), P),
        lambda: mm.munmap(at(5), P),
    ]
    results = []
    for op in ops:
        try:
            op()
            results.append(0)
        except OSError as exc:
            results.append(exc.errno or -1)
    return results


def anomaly(subject: Subject, profile: str, point: str, fired: bool) -> str | None:
    """The documented imbalance this run must show, or None for a balanced ledger."""
    if subject.name == "tcmu" and subject.form == "new" and profile == "v4":
        return "leak per mapped"
    if not fired or subject.form not in ("new",):
        return None
    if subject.name == "stm" and point in ("action_complete", "mapped"):
        return "close without get"
    if subject.name == "vme_user" and point in ("action_complete", "mapped"):
        return "close without private"
    if subject.name in ("afs", "refcount_good") and point == "mapped":
        return "close without get"
    return None


def check(subject: Subject, expected: str | None) -> None:
    ledger = subject.ledger
    if expected is None:
        ledger.assert_balanced()
    elif expected == "close without get":
        assert ledger.balance() == {subject.resource: -1}, ledger.report()
        assert ledger.double_releases()[0].cause == "close"
        assert not ledger.flags()
    elif expected == "close without private":
        assert not ledger.leaks() and not ledger.double_releases(), ledger.report()
        assert {(f.message, f.cause) for f in ledger.flags()} == {
            ("NULL dereference of vm_private_data", "close")
        }
    else:  # leak per mapped: every acquire came from mapped and none was ever released
        acquired = ledger.causes("acquire")
        assert set(acquired) == {"mapped"} and acquired["mapped"] >= 1
        assert ledger.balance() == {subject.resource: acquired["mapped"]}
        assert ledger.causes("release") == {}


INJECTIONS = [(None, 0)] + [(point, nth) for point in sorted(FAILURE_POINTS) for nth in (1, 2)]


@pytest.mark.parametrize(("name", "form"), CASES, ids=[f"{n}-{f}" for n, f in CASES])
@pytest.mark.parametrize(("point", "nth"), INJECTIONS,
                         ids=[f"{p}-{n}" if p else "none" for p, n in INJECTIONS])
def test_ledger_after_every_failure_point(new_mm, name, form, point, nth):
    subject = SUBJECTS[name](form)
    fired = False
    if point is None:
        scenario(new_mm, subject)
    else:
        with new_mm.inject(point, nth=nth) as rule:
            scenario(new_mm, subject)
        fired = bool(rule.fired)
    expected = anomaly(subject, new_mm.profile.name, point or "", fired)
    if expected is None and subject.per_vma:
        # While mapped: one unit per live VMA object.
        assert subject.ledger.count(subject.resource) == len(layout(new_mm))
    exit_mm(new_mm)
    assert layout(new_mm) == []
    check(subject, expected)


@pytest.mark.parametrize(("name", "form"), CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_opens_follow_splits(new_mm, name, form):
    subject = SUBJECTS[name](form)
    with collect(new_mm) as events:
        results = scenario(new_mm, subject)
    if subject.name == "tcmu" and form == "new" and new_mm.profile.name == "v4":
        assert results[:4] == [errno.EINVAL] * 4  # every mmap refused (__vma_check_mmap_hook)
        return
    assert results == [0] * 7
    splits = [e for e in events if isinstance(e, Split)]
    assert len(splits) >= 5
    if subject.per_vma:
        # one open per split piece, none for the first mapping or for merges
        assert subject.ledger.causes("acquire").get("open", 0) == len(splits)
        assert subject.ledger.count(subject.resource) == len(layout(new_mm))
