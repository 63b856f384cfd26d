"""stm (drivers/hwtracing/stm/core.c, v4 15/21): the MMIO window of a file's channels; one
runtime-PM reference per VMA.

New form: the checks run in mmap_prepare and the synchronous PM get moves to ``mapped``;
old form: the get is in ``.mmap`` and a failed ioremap is ignored.
"""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import PGPROT_CACHE_MASK, PGPROT_UC, VMA_REMAP_FLAGS
from vmamodel.driver_error import DriverError
from vmamodel.drivers import stm

from .util import (
    RO,
    P,
    at,
    exit_mm,
    flags_at,
    layout,
    mmap_at,
    raises_errno,
    vma_at,
)


def stm_file(dev: stm.StmDevice, form: str, nr_chans: int = 2) -> object:
    return stm.open_device(dev, nr_chans=nr_chans, form=form)


def map_stm(mm, file, *, page=0, pages=2, pgoff=0):
    return mmap_at(mm, page, pages, file, prot=RO, pgoff=pgoff)


@pytest.mark.parametrize(
    ("device", "nr_chans", "pages", "pgoff", "err"),
    [
        ({"has_mmio": False}, 2, 1, 1, errno.EOPNOTSUPP),  # before the offset check
        ({}, 2, 2, 1, errno.EINVAL),  # non-zero offset
        ({}, 2, 1, 0, errno.EINVAL),  # shorter than the channels
        ({}, 2, 3, 0, errno.EINVAL),  # longer than the channels
        ({}, 0, 1, 0, errno.EINVAL),  # no channels assigned yet
        ({"mmio_returns_zero": True}, 2, 2, 0, errno.EINVAL),
    ],
)
def test_checks_in_order_and_no_reference_taken(new_mm, form, device, nr_chans, pages, pgoff,
                                                 err):
    dev = stm.StmDevice(**device)
    with raises_errno(err):
        map_stm(new_mm, stm_file(dev, form, nr_chans), pages=pages, pgoff=pgoff)
    assert layout(new_mm) == []
    assert dev.ledger.history() == []


def test_success_takes_one_reference(new_mm, form):
    dev = stm.StmDevice()
    map_stm(new_mm, stm_file(dev, form))
    assert dev.ledger.count(stm.PM) == 1
    wanted = "mapped" if form == "new" else "mmap"
    assert dev.ledger.causes("acquire") == {wanted: 1}


def test_flags_and_noncached(new_mm, form):
    map_stm(new_mm, stm_file(stm.StmDevice(), form))
    assert flags_at(new_mm, 0) & VMA_REMAP_FLAGS == VMA_REMAP_FLAGS  # STM_FLAGS + PFNMAP
    assert vma_at(new_mm, 0).vm_page_prot & PGPROT_CACHE_MASK == PGPROT_UC


def test_never_merges_with_a_neighbouring_stm_mapping(new_mm, form):
    dev = stm.StmDevice()
    file = stm_file(dev, form)
    map_stm(new_mm, file, page=0)
    map_stm(new_mm, file, page=2)
    assert layout(new_mm) == [(0, 2), (2, 4)]
    assert dev.ledger.count(stm.PM) == 2


def test_split_opens_and_piecewise_unmap_closes(new_mm, form):
    dev = stm.StmDevice()
    map_stm(new_mm, stm_file(dev, form, nr_chans=4), pages=4)
    new_mm.mprotect(at(1), P, 0)
    assert dev.ledger.count(stm.PM) == 3
    new_mm.munmap(at(0), 2 * P)
    assert dev.ledger.count(stm.PM) == 1
    exit_mm(new_mm)
    dev.ledger.assert_balanced()


def test_ioremap_failure_old_ignores_new_refuses(new_mm, form):
    # phys + size wraps: vm_iomap_memory / simple_ioremap_prepare say EINVAL.
    dev = stm.StmDevice(mmio_base=(1 << 64) - P)
    file = stm_file(dev, form, nr_chans=2)
    if form == "new":
        with raises_errno(errno.EINVAL):
            map_stm(new_mm, file)
        assert dev.ledger.history() == []
    else:
        map_stm(new_mm, file)  # succeeds with nothing mapped and the reference held
        assert dev.ignored_errors == [errno.EINVAL]
        assert dev.ledger.count(stm.PM) == 1
        assert not new_mm.pages.present


def test_complete_time_failure_puts_a_reference_never_taken(new_mm):
    # Inferred (docs/drivers.md section 6): the remap fails in mmap_action_complete, mapped
    # is skipped, the unmap runs close.
    dev = stm.StmDevice()
    with new_mm.inject("action_complete"), raises_errno(errno.ENOMEM):
        map_stm(new_mm, stm_file(dev, "new"))
    assert layout(new_mm) == []
    assert dev.ledger.balance() == {stm.PM: -1}
    [underflow] = dev.ledger.double_releases()
    assert underflow.cause == "close"


def test_old_form_complete_time_failure_is_ignored(new_mm):
    dev = stm.StmDevice()
    with new_mm.inject("action_complete"):
        map_stm(new_mm, stm_file(dev, "old"))
    assert dev.ignored_errors == [errno.ENOMEM]
    assert dev.ledger.count(stm.PM) == 1


def test_6_18_cannot_build_the_new_form(make_mm):
    with pytest.raises(DriverError) as info:  # would not compile: a driver bug
        map_stm(make_mm("6.18"), stm_file(stm.StmDevice(), "new"))
    assert isinstance(info.value.__cause__, TypeError)
