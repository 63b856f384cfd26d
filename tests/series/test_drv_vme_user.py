"""vme_user (drivers/staging/vme_user, v4 16/21): master windows; one private struct per
original mapping, shared by its split pieces, and the image's mmap_count."""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import PGPROT_CACHE_MASK, PGPROT_UC, VMA_REMAP_FLAGS
from vmamodel.drivers import vme_user as vme

from .util import RW, P, at, exit_mm, flags_at, layout, mmap_at, raises_errno, vma_at

WINDOW = 16  # pages


def bridge_with(**resource: object) -> vme.VmeUserBridge:
    images = {
        0: vme.VmeImage(vme.MASTER_MINOR, vme.VmeResource(**resource)),  # type: ignore[arg-type]
        1: vme.VmeImage(vme.SLAVE_MINOR, vme.VmeResource()),
    }
    return vme.VmeUserBridge(images=images)


def map_vme(mm, bridge, form, *, minor=0, page=0, pages=4, pgoff=0):
    file = vme.open_device(bridge, minor, form=form)
    return mmap_at(mm, page, pages, file, prot=RW, pgoff=pgoff)


def test_no_such_minor_is_enodev_at_open():
    with raises_errno(errno.ENODEV):
        vme.open_device(bridge_with(), 7)


@pytest.mark.parametrize(
    ("resource", "minor", "pages", "pgoff", "err"),
    [
        ({}, 1, 4, 0, errno.ENODEV),  # not a master minor
        ({"is_master": False}, 0, 4, 0, errno.EINVAL),
        ({}, 0, WINDOW + 1, 0, errno.EFAULT),  # past the window's end
        ({}, 0, 4, WINDOW - 3, errno.EFAULT),
        ({}, 0, 4, 1, errno.EINVAL),  # offset applied twice (docs/drivers.md 7)
        ({}, 0, 1, WINDOW - 1, errno.EINVAL),
    ],
)
def test_checks_and_errno(new_mm, form, resource, minor, pages, pgoff, err):
    bridge = bridge_with(**resource)
    with raises_errno(err):
        map_vme(new_mm, bridge, form, minor=minor, pages=pages, pgoff=pgoff)
    assert layout(new_mm) == []
    assert bridge.ledger.history() == []
    assert bridge.images[0].mmap_count == 0


def test_success(new_mm, form):
    bridge = bridge_with()
    map_vme(new_mm, bridge, form)
    vma = vma_at(new_mm, 0)
    assert bridge.images[0].mmap_count == 1
    assert isinstance(vma.vm_private_data, vme.VmeUserVmaPriv)
    assert vma.vm_private_data.refcnt == 1
    assert flags_at(new_mm, 0) & VMA_REMAP_FLAGS == VMA_REMAP_FLAGS
    assert vma.vm_page_prot & PGPROT_CACHE_MASK == PGPROT_UC
    wanted = "mapped" if form == "new" else "mmap"
    assert bridge.ledger.causes("acquire") == {wanted: 2}  # the struct and mmap_count
    assert bridge.ledger.balance() == {vme.PRIV: 1, "mmap_count[0]": 1}


def test_the_whole_window_at_offset_zero(new_mm, form):
    bridge = bridge_with()
    map_vme(new_mm, bridge, form, pages=WINDOW)
    assert layout(new_mm) == [(0, WINDOW)]


def test_never_merges(new_mm, form):
    bridge = bridge_with()
    map_vme(new_mm, bridge, form, page=0)
    map_vme(new_mm, bridge, form, page=4)
    assert layout(new_mm) == [(0, 4), (4, 8)]
    assert bridge.images[0].mmap_count == 2


def test_split_pieces_share_one_struct_until_the_last_goes(new_mm, form):
    bridge = bridge_with()
    map_vme(new_mm, bridge, form)
    new_mm.mprotect(at(1), P, 0)
    privs = {id(v.vm_private_data) for v in new_mm.tree}
    priv = vma_at(new_mm, 0).vm_private_data
    assert len(privs) == 1 and priv.refcnt == 3
    new_mm.munmap(at(0), 2 * P)
    assert priv.refcnt == 1 and bridge.images[0].mmap_count == 1
    new_mm.munmap(at(2), 2 * P)
    assert bridge.images[0].mmap_count == 0
    assert bridge.ledger.causes("release") == {"close": 2}  # mmap_count and the kfree
    bridge.ledger.assert_balanced()


def test_exit_returns_everything(new_mm, form):
    bridge = bridge_with()
    map_vme(new_mm, bridge, form, page=0)
    map_vme(new_mm, bridge, form, page=8)
    new_mm.mprotect(at(9), P, 0)
    exit_mm(new_mm)
    assert bridge.images[0].mmap_count == 0
    bridge.ledger.assert_balanced()


def test_new_form_mapped_enomem_unmaps_and_close_sees_no_struct(new_mm):
    # Inferred (docs/drivers.md section 7): close dereferences the NULL private pointer.
    bridge = bridge_with()
    bridge.fail_alloc = True
    with raises_errno(errno.ENOMEM):
        map_vme(new_mm, bridge, "new")
    assert layout(new_mm) == []
    [flag] = bridge.ledger.flags()
    assert (flag.message, flag.cause) == ("NULL dereference of vm_private_data", "close")
    assert bridge.images[0].mmap_count == 0


def test_old_form_allocation_failure_discards_the_vma_without_close(new_mm):
    bridge = bridge_with()
    bridge.fail_alloc = True
    with raises_errno(errno.ENOMEM):
        map_vme(new_mm, bridge, "old")
    assert layout(new_mm) == []
    bridge.ledger.assert_balanced()


def test_the_mutex_is_taken_twice_in_the_new_form(new_mm, form):
    # v2 review: prepare and mapped each take image[minor].mutex, the remap runs between.
    bridge = bridge_with()
    map_vme(new_mm, bridge, form)
    assert bridge.images[0].mutex_holds == (2 if form == "new" else 1)
