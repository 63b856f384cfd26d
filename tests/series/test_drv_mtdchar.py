"""mtdchar (drivers/mtd/mtdchar.c): every mmap on an MMU kernel is ENODEV, in both forms."""

from __future__ import annotations

import errno

import pytest

from vmamodel import memfd_create
from vmamodel.drivers import mtdchar
from vmamodel.events import HookCall, VmaCreated

from .util import PRIVATE_FIXED, RO, RW, SHARED_FIXED, collect, layout, mmap_at, raises_errno


@pytest.mark.parametrize("flags", [SHARED_FIXED, PRIVATE_FIXED])
@pytest.mark.parametrize("prot", [RO, RW])
def test_mmu_kernel_refuses_every_mmap_with_enodev(new_mm, form, flags, prot):
    file = mtdchar.open_device(mtdchar.MtdDevice(), form=form)
    with raises_errno(errno.ENODEV):
        mmap_at(new_mm, 0, 2, file, prot=prot, flags=flags, pgoff=0)
    assert layout(new_mm) == []


def test_new_form_refuses_before_allocating_old_form_after(new_mm, form):
    file = mtdchar.open_device(mtdchar.MtdDevice(), form=form)
    with collect(new_mm) as events, raises_errno(errno.ENODEV):
        mmap_at(new_mm, 0, 1, file, pgoff=0)
    [call] = [e for e in events if isinstance(e, HookCall)]
    assert not any(isinstance(e, VmaCreated) for e in events)
    assert (call.hook, call.vma_id is None) == (
        ("mmap_prepare", True) if form == "new" else ("mmap", False)
    )


def test_map_fixed_over_an_existing_range_leaves_a_hole(new_mm, form):
    buf = memfd_create("under", 1 << 20)
    mmap_at(new_mm, 0, 4, buf)
    file = mtdchar.open_device(mtdchar.MtdDevice(), form=form)
    with raises_errno(errno.ENODEV):
        mmap_at(new_mm, 1, 2, file, pgoff=0)
    assert layout(new_mm) == [(0, 1), (3, 4)]


@pytest.mark.parametrize(("flags", "err"), [(PRIVATE_FIXED, errno.EACCES), (SHARED_FIXED, 0)])
def test_nommu_rule_shared_only(new_mm, form, flags, err):
    # NOMMU kernels accept shared mappings (nothing mapped by the driver) and refuse private
    # ones; the decision is the same function of the flags in both forms.
    file = mtdchar.open_device(mtdchar.MtdDevice(mmu=False), form=form)
    if err:
        with raises_errno(err):
            mmap_at(new_mm, 0, 1, file, flags=flags, pgoff=0)
    else:
        mmap_at(new_mm, 0, 1, file, flags=flags, pgoff=0)
        assert layout(new_mm) == [(0, 1)]
        assert not new_mm.pages.present
