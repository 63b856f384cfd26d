"""AFS (fs/afs/file.c, v4 09/21 and 10/21; docs/drivers.md section 11): cb_nr_mmap counts
live VMA objects, and the vnode is on its volume's open_mmaps list exactly while the count
is non-zero. AFS VMAs are ordinary file VMAs, so a new range can merge into a neighbour -
which is why the count belongs in ``mapped``."""

from __future__ import annotations

import errno

import pytest

from vmamodel.drivers import afs, stacked
from vmamodel.events import HookCall

from .util import RO, P, at, collect, exit_mm, layout, mmap_at, raises_errno


def vnode_and_file(form: str = "new", **vnode: object) -> tuple[afs.AfsVnode, object]:
    node = afs.AfsVnode(afs.AfsVolume(), **vnode)  # type: ignore[arg-type]
    return node, afs.open_file(node, form=form)


@pytest.mark.parametrize("form", ["new", "legacy"])
def test_merged_range_is_not_counted(new_mm, form):
    node, file = vnode_and_file(form)
    mmap_at(new_mm, 0, 2, file)
    with collect(new_mm) as events:
        mmap_at(new_mm, 2, 2, file)
    # The legacy hook only runs on a VMA allocated after a failed merge attempt: both
    # forms merge, neither counts the merged range.
    assert layout(new_mm) == [(0, 4)]
    assert node.cb_nr_mmap == 1
    assert not any(isinstance(e, HookCall) and e.hook == "mapped" for e in events)


def test_non_merging_mapping_is_counted_by_mapped(new_mm):
    node, file = vnode_and_file()
    mmap_at(new_mm, 0, 2, file)
    mmap_at(new_mm, 4, 2, file)
    assert node.cb_nr_mmap == 2
    assert node.ledger.causes("acquire") == {"mapped": 2}
    assert node.on_list


def test_buggy_prepare_counts_the_merged_range(new_mm):
    node, file = vnode_and_file("buggy_prepare")
    mmap_at(new_mm, 0, 2, file)
    mmap_at(new_mm, 2, 2, file)
    exit_mm(new_mm)
    assert node.cb_nr_mmap == 1 and node.on_list  # stays on open_mmaps forever


@pytest.mark.parametrize("point", ["vma_alloc", "vma_prealloc"])
@pytest.mark.parametrize(("form", "leak"), [("new", 0), ("legacy", 0), ("buggy_prepare", 1)])
def test_failure_after_prepare(new_mm, point, form, leak):
    node, file = vnode_and_file(form)
    with new_mm.inject(point), raises_errno(errno.ENOMEM):
        mmap_at(new_mm, 0, 2, file)
    assert node.cb_nr_mmap == leak and node.on_list is bool(leak)


@pytest.mark.parametrize("form", afs.AFS_FORMS)
def test_no_read_folio_is_enoexec_in_every_form(new_mm, form):
    node, file = vnode_and_file(form, has_read_folio=False)
    with raises_errno(errno.ENOEXEC):
        mmap_at(new_mm, 0, 2, file)
    assert node.cb_nr_mmap == 0 and not node.on_list


@pytest.mark.parametrize("form", ["new", "legacy"])
def test_split_unmap_and_exit(new_mm, form):
    node, file = vnode_and_file(form)
    mmap_at(new_mm, 0, 4, file)
    new_mm.mprotect(at(1), P, RO)
    assert node.cb_nr_mmap == 3
    new_mm.munmap(at(0), P)
    assert node.cb_nr_mmap == 2
    exit_mm(new_mm)
    assert node.cb_nr_mmap == 0 and not node.on_list
    assert node.callback_work_flushes == 1
    node.ledger.assert_balanced()


def test_new_range_between_two_afs_vmas_merges_into_one_only(new_mm):
    # afs_vm_ops has close: a merge may expand a VMA but never remove one
    # (can_merge_remove_vma() in mm/vma.c).
    node, file = vnode_and_file()
    mmap_at(new_mm, 0, 2, file)
    mmap_at(new_mm, 4, 2, file)
    mmap_at(new_mm, 2, 2, file)
    assert layout(new_mm) == [(0, 4), (4, 6)]
    assert node.cb_nr_mmap == 2


def test_v4_stacked_over_afs_fails_after_afs_mapped_counted(mm):
    # Inferred (docs/drivers.md section 11): the same failure class as TCMU under v4.
    node, file = vnode_and_file()
    with raises_errno(errno.EINVAL):
        mmap_at(mm, 0, 2, stacked.open_stacked(file))
    assert node.cb_nr_mmap == 1 and node.on_list
    assert node.ledger.causes("release") == {}


def test_mainline_stacked_over_afs_counts_once(make_mm):
    mm = make_mm("mainline")
    node, file = vnode_and_file()
    mmap_at(mm, 0, 2, stacked.open_stacked(file))
    assert node.ledger.causes("acquire") == {"mapped": 1}
    exit_mm(mm)
    node.ledger.assert_balanced()
