"""uio core and TCMU (drivers/uio/uio.c, drivers/target/target_core_user.c; v4 19/21):
uio_mmap stays a legacy ``.mmap``; TCMU's hook becomes prepare-style, run through the compat
layer, with a kref taken in ``mapped``."""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import PGPROT_CACHE_MASK, PGPROT_UC, PGPROT_WB, VM, VMA_REMAP_FLAGS
from vmamodel.drivers import tcmu, uio
from vmamodel.drivers.uio import UioMem, UioMemType
from vmamodel.events import HookCall, WarnOn

from .util import (
    PRIVATE_FIXED,
    RW,
    P,
    at,
    collect,
    exit_mm,
    flags_at,
    layout,
    maps_offset,
    mmap_at,
    raises_errno,
    vma_at,
)

PHYS = 0xC000_0000


def uio_dev(*mems: UioMem) -> uio.UioDevice:
    return uio.UioDevice(0, uio.UioInfo("uio_test", mem=list(mems)))


def map_uio(mm, dev, *, index=0, pages=1, page=0, flags=None):
    kwargs = {} if flags is None else {"flags": flags}
    return mmap_at(mm, page, pages, uio.open_device(dev), prot=RW, pgoff=index, **kwargs)


# -- uio core -----------------------------------------------------------------------------


def test_device_gone_after_open_is_einval(new_mm):
    dev = uio_dev(UioMem(PHYS, 4 * P, UioMemType.PHYS))
    file = uio.open_device(dev)
    dev.info = None
    with raises_errno(errno.EINVAL):
        mmap_at(new_mm, 0, 1, file, prot=RW, pgoff=0)
    with raises_errno(errno.ENODEV):
        uio.open_device(dev)


def test_offset_selects_the_map(new_mm):
    dev = uio_dev(UioMem(PHYS, P, UioMemType.PHYS), UioMem(PHYS + 0x10000, 2 * P,
                                                           UioMemType.PHYS))
    map_uio(new_mm, dev, index=1, pages=2)
    assert vma_at(new_mm, 0).vm_pgoff == 1  # MAP_SHARED: the index stays the offset


@pytest.mark.parametrize("index", [1, 5, 6])
def test_missing_or_empty_map_is_einval(new_mm, index):
    mems = [UioMem(PHYS, P, UioMemType.PHYS), UioMem(0, 0, UioMemType.PHYS)]
    mems += [UioMem(PHYS, P, UioMemType.PHYS)] * 4  # indexes 2..5: 5 is beyond MAX_UIO_MAPS
    with raises_errno(errno.EINVAL):
        map_uio(new_mm, uio_dev(*mems), index=index)


def test_more_pages_than_the_map_spans_is_einval(new_mm):
    with raises_errno(errno.EINVAL):
        map_uio(new_mm, uio_dev(UioMem(PHYS, 2 * P, UioMemType.PHYS)), pages=3)


def test_physical_map_not_page_aligned_is_enodev(new_mm):
    with raises_errno(errno.ENODEV):
        map_uio(new_mm, uio_dev(UioMem(PHYS + 0x10, P, UioMemType.PHYS)))


def test_longer_than_a_physical_map_is_einval(new_mm):
    # Spans 2 pages (passes the span check) but is shorter than 2 pages.
    with raises_errno(errno.EINVAL):
        map_uio(new_mm, uio_dev(UioMem(PHYS, P + 1, UioMemType.PHYS)), pages=2)


def test_memtype_none_without_a_hook_is_einval(new_mm):
    with raises_errno(errno.EINVAL):
        map_uio(new_mm, uio_dev(UioMem(PHYS, P, UioMemType.NONE)))


@pytest.mark.parametrize(("memtype", "cache"), [(UioMemType.PHYS, PGPROT_UC),
                                                (UioMemType.IOVA, PGPROT_WB)])
def test_physical_and_iova_maps(new_mm, memtype, cache):
    map_uio(new_mm, uio_dev(UioMem(PHYS, 2 * P, memtype)), pages=2)
    assert flags_at(new_mm, 0) & VMA_REMAP_FLAGS == VMA_REMAP_FLAGS
    assert vma_at(new_mm, 0).vm_page_prot & PGPROT_CACHE_MASK == cache
    assert new_mm.pages.present == {at(0), at(1)}


@pytest.mark.parametrize("memtype", [UioMemType.LOGICAL, UioMemType.VIRTUAL])
def test_logical_and_virtual_maps_fault_their_pages_in(new_mm, memtype):
    map_uio(new_mm, uio_dev(UioMem(0xFFFF_8880_0000_0000, 2 * P, memtype)), pages=2)
    flags = flags_at(new_mm, 0)
    assert flags & (VM.DONTEXPAND | VM.DONTDUMP) == VM.DONTEXPAND | VM.DONTDUMP
    assert not flags & VM.PFNMAP
    assert not new_mm.pages.present


def test_private_physical_map_pgoff_becomes_the_pfn(new_mm):
    map_uio(new_mm, uio_dev(UioMem(PHYS, P, UioMemType.PHYS)), flags=PRIVATE_FIXED)
    assert maps_offset(new_mm, 0) == PHYS


def test_dma_coherent_keeps_the_index_as_pgoff(new_mm):
    dev = uio_dev(UioMem(PHYS, P, UioMemType.PHYS), UioMem(PHYS + 0x100000, 2 * P,
                                                           UioMemType.DMA_COHERENT))
    map_uio(new_mm, dev, index=1, pages=2)
    assert vma_at(new_mm, 0).vm_pgoff == 1
    assert new_mm.pages.present == {at(0), at(1)}


# -- TCMU ---------------------------------------------------------------------------------


def tcmu_file(udev: tcmu.TcmuDevice, form: str) -> object:
    return uio.open_device(tcmu.tcmu_uio_device(udev, form=form))


@pytest.mark.parametrize("form", ["new", "old"])
def test_tcmu_wrong_size_is_einval_with_kref_unchanged(new_mm, form):
    udev = tcmu.TcmuDevice(mmap_pages=4)
    with raises_errno(errno.EINVAL):
        mmap_at(new_mm, 0, 3, tcmu_file(udev, form), prot=RW, pgoff=0)
    assert udev.kref() == 1 and udev.ledger.history() == []


def test_tcmu_mainline_success_takes_one_kref_in_mapped(make_mm):
    mm = make_mm("mainline")
    udev = tcmu.TcmuDevice(mmap_pages=4)
    with collect(mm) as events:
        mmap_at(mm, 0, 4, tcmu_file(udev, "new"), prot=RW, pgoff=0)
    assert udev.kref() == 2
    assert udev.ledger.causes("acquire") == {"mapped": 1}
    # mapped runs inside uio_mmap's compat call, before the VMA is in the tree
    hooks = [(e.hook, e.owner) for e in events if isinstance(e, HookCall)]
    assert hooks == [("mmap_prepare", "tcmu0"), ("mapped", "TcmuMappedVmOps"),
                     ("mmap", "UioFops")]
    flags = flags_at(mm, 0)
    assert flags & (VM.DONTEXPAND | VM.DONTDUMP) == VM.DONTEXPAND | VM.DONTDUMP
    assert vma_at(mm, 0).vm_private_data is udev


@pytest.mark.parametrize("form", ["new", "old"])
def test_tcmu_split_and_teardown_return_the_kref(make_mm, form):
    mm = make_mm("mainline")
    udev = tcmu.TcmuDevice(mmap_pages=4)
    mmap_at(mm, 0, 4, tcmu_file(udev, form), prot=RW, pgoff=0)
    mm.mprotect(at(1), P, 0)
    assert udev.kref() == 1 + 3
    exit_mm(mm)
    assert udev.kref() == 1
    udev.ledger.assert_balanced()


def test_tcmu_v4_every_mmap_fails_and_leaks_a_kref(mm):
    # v4's __vma_check_mmap_hook() after uio_mmap() sees tcmu_vm_ops.mapped (3d3544a6c996).
    udev = tcmu.TcmuDevice(mmap_pages=4)
    file = tcmu_file(udev, "new")
    for attempt in range(1, 4):
        with collect(mm) as events, raises_errno(errno.EINVAL):
            mmap_at(mm, 0, 4, file, prot=RW, pgoff=0)
        assert udev.kref() == 1 + attempt
        assert any(isinstance(e, WarnOn) and "__vma_check_mmap_hook" in e.message
                   for e in events)
    assert layout(mm) == []
    assert udev.ledger.causes("release") == {}


def test_tcmu_v4_old_form_is_fine(mm):
    udev = tcmu.TcmuDevice(mmap_pages=4)
    mmap_at(mm, 0, 4, tcmu_file(udev, "old"), prot=RW, pgoff=0)
    assert udev.ledger.causes("acquire") == {"mmap": 1}
    exit_mm(mm)
    udev.ledger.assert_balanced()
