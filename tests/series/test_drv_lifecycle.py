"""Driver mappings across fork, mremap and exit: dup_mmap calls ``open`` on every copied VMA
(never ``mapped``) and skips VM_DONTCOPY ones; an mremap move opens the copy and closes the
old VMA; exit_mmap calls ``close`` on every VMA."""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import MREMAP_FIXED, MREMAP_MAYMOVE
from vmamodel.drivers import afs, hpet, open_dice, stm, tcmu, uio, vme_user
from vmamodel.drivers import refcount_good as good
from vmamodel.events import HookCall

from .test_drv_ledgers import SUBJECTS
from .util import RO, RW, SHARED_FIXED, P, at, collect, layout, mmap_at, raises_errno


@pytest.mark.parametrize(("name", "form"), [
    ("stm", "new"), ("stm", "old"), ("tcmu", "new"), ("tcmu", "old"), ("afs", "new"),
    ("afs", "legacy"), ("refcount_good", "new"),
])
def test_fork_opens_each_copy_and_both_exits_balance(make_mm, name, form):
    mm = make_mm("mainline")
    subject = SUBJECTS[name](form)
    for page in (0, 8):
        mm.mmap(at(page), 4 * P, RO, SHARED_FIXED, subject.open(), subject.offset(page) * P)
    mm.mprotect(at(1), P, 0)
    before = subject.ledger.count(subject.resource)
    with collect(mm) as events:
        child = mm.fork()
    hooks = [e.hook for e in events if isinstance(e, HookCall)]
    assert hooks == ["open"] * len(layout(mm))  # never mapped
    assert subject.ledger.count(subject.resource) == 2 * before
    child.exit()
    assert subject.ledger.count(subject.resource) == before
    mm.exit()
    subject.ledger.assert_balanced()


def test_open_dice_mappings_are_not_copied(new_mm):
    file = open_dice.open_device(open_dice.OpenDiceDevice())
    mmap_at(new_mm, 0, 1, file, prot=RO, pgoff=0)
    mmap_at(new_mm, 4, 1, good.open_device(good.GoodDevice()))
    child = new_mm.fork()
    assert layout(child) == [(4, 5)]  # VM_DONTCOPY
    child.exit()


def test_vme_user_fork_copy_shares_the_struct(new_mm):
    image = vme_user.VmeImage(vme_user.MASTER_MINOR, vme_user.VmeResource())
    bridge = vme_user.VmeUserBridge(images={0: image})
    mmap_at(new_mm, 0, 4, vme_user.open_device(bridge, 0), prot=RW, pgoff=0)
    child = new_mm.fork()
    parent_priv = new_mm.find_vma(at(0)).vm_private_data
    assert child.find_vma(at(0)).vm_private_data is parent_priv
    assert parent_priv.refcnt == 2
    new_mm.exit()
    assert image.mmap_count == 1  # the child still maps the window
    child.exit()
    assert image.mmap_count == 0
    bridge.ledger.assert_balanced()


def test_afs_child_keeps_the_vnode_on_the_list(new_mm):
    vnode = afs.AfsVnode(afs.AfsVolume())
    mmap_at(new_mm, 0, 2, afs.open_file(vnode))
    child = new_mm.fork()
    new_mm.exit()
    assert vnode.cb_nr_mmap == 1 and vnode.on_list
    child.exit()
    assert vnode.cb_nr_mmap == 0 and not vnode.on_list


def test_tcmu_kref_after_fork_and_exit(make_mm):
    mm = make_mm("mainline")
    udev = tcmu.TcmuDevice(mmap_pages=4)
    mmap_at(mm, 0, 4, uio.open_device(tcmu.tcmu_uio_device(udev)), prot=RW, pgoff=0)
    child = mm.fork()
    assert udev.kref() == 3
    child.exit()
    mm.exit()
    assert udev.kref() == 1
    assert not udev.ledger.flags()


def test_stm_exit_puts_every_reference(new_mm):
    dev = stm.StmDevice()
    file = stm.open_device(dev, nr_chans=2)
    mmap_at(new_mm, 0, 2, file, prot=RO, pgoff=0)
    mmap_at(new_mm, 4, 2, file, prot=RO, pgoff=0)
    with collect(new_mm) as events:
        new_mm.exit()
    assert [e.hook for e in events if isinstance(e, HookCall)] == ["close", "close"]
    dev.ledger.assert_balanced()


@pytest.mark.parametrize("form", ["new", "old"])
def test_an_mremap_move_opens_the_copy_and_closes_the_original(new_mm, form):
    dev = stm.StmDevice()
    mmap_at(new_mm, 0, 2, stm.open_device(dev, nr_chans=2, form=form), prot=RO, pgoff=0)
    with collect(new_mm) as events:
        new_mm.mremap(at(0), 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, at(16))
    assert [e.hook for e in events if isinstance(e, HookCall)] == ["open", "close"]
    assert layout(new_mm) == [(16, 18)]
    assert dev.ledger.count(stm.PM) == 1
    new_mm.exit()
    dev.ledger.assert_balanced()


@pytest.mark.parametrize("driver", ["hpet", "stm"])
def test_special_mappings_cannot_grow(new_mm, driver):
    # VM_DONTEXPAND (and VM_PFNMAP): check_prep_vma() in mm/mremap.c says EFAULT.
    if driver == "hpet":
        file = hpet.open_device(hpet.HpetDevice())
        mmap_at(new_mm, 0, 1, file, prot=RO, pgoff=0)
    else:
        mmap_at(new_mm, 0, 1, stm.open_device(stm.StmDevice()), prot=RO, pgoff=0)
    with raises_errno(errno.EFAULT):
        new_mm.mremap(at(0), P, 2 * P, 0)
    assert layout(new_mm) == [(0, 1)]


def test_afs_grows_in_place_without_a_new_vma(new_mm):
    vnode = afs.AfsVnode(afs.AfsVolume())
    mmap_at(new_mm, 0, 2, afs.open_file(vnode))
    new_mm.mremap(at(0), 2 * P, 4 * P, 0)
    assert layout(new_mm) == [(0, 4)] and vnode.cb_nr_mmap == 1
