"""Hyper-V vmbus ``ring`` sysfs file + uio_hv_generic (drivers/hv/vmbus_drv.c,
drivers/uio/uio_hv_generic.c; v4 18/21): a compat-path driver.

kernfs's legacy ``.mmap`` calls the channel's callback; in the new form that is a
prepare-style callback run through compat_set_desc_from_vma + __compat_vma_mmap.
"""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import VMA_REMAP_FLAGS
from vmamodel.drivers import hv_vmbus as hv
from vmamodel.drivers import uio
from vmamodel.events import ActionStep, HookCall
from vmamodel.file import VMA_DUMMY_VM_OPS

from .util import (
    PRIVATE_FIXED,
    RW,
    collect,
    flags_at,
    layout,
    maps_offset,
    mmap_at,
    raises_errno,
    vma_at,
)

RING_PAGES = 8


def probe(form: str, **channel: object) -> hv.HvUioDevice:
    return hv.hv_uio_probe(hv.VmbusChannel(**channel), form=form)  # type: ignore[arg-type]


def map_ring(mm, dev, *, page=0, pages=RING_PAGES, pgoff=0, flags=None):
    kwargs = {} if flags is None else {"flags": flags}
    return mmap_at(mm, page, pages, hv.open_ring(dev.channel), prot=RW, pgoff=pgoff, **kwargs)


def remapped_pfns(events):
    return [e.detail.split("pfn=")[1].split()[0] for e in events
            if isinstance(e, ActionStep) and e.step == "remap"]


def test_channel_not_opened_is_enodev(new_mm, form):
    with raises_errno(errno.ENODEV):
        map_ring(new_mm, probe(form, opened=False))
    assert layout(new_mm) == []


@pytest.mark.parametrize(("pages", "pgoff"), [(RING_PAGES + 1, 0), (1, RING_PAGES),
                                              (RING_PAGES, 1)])
def test_beyond_the_ring_is_einval(new_mm, form, pages, pgoff):
    with raises_errno(errno.EINVAL):
        map_ring(new_mm, probe(form), pages=pages, pgoff=pgoff)
    assert layout(new_mm) == []


def test_new_form_einval_comes_from_action_prepare(new_mm):
    with collect(new_mm) as events, raises_errno(errno.EINVAL):
        map_ring(new_mm, probe("new"), pgoff=1)
    [step] = [e for e in events if isinstance(e, ActionStep)]
    assert (step.step, step.action, step.errno) == ("prepare", "SIMPLE_IO_REMAP", errno.EINVAL)


def test_success_flags_and_no_counted_hooks(new_mm, form):
    dev = probe(form)
    with collect(new_mm) as events:
        map_ring(new_mm, dev)
    assert flags_at(new_mm, 0) & VMA_REMAP_FLAGS == VMA_REMAP_FLAGS
    hooks = [e.hook for e in events if isinstance(e, HookCall)]
    assert "mapped" not in hooks and "open" not in hooks and "close" not in hooks
    assert vma_at(new_mm, 0).vm_ops is hv.KERNFS_VM_OPS


def test_private_mapping_offset_is_the_ring_pfn(new_mm, form):
    dev = probe(form)
    map_ring(new_mm, dev, flags=PRIVATE_FIXED)
    assert maps_offset(new_mm, 0) == dev.channel.ring_phys


def test_partial_ring_at_an_offset(new_mm, form):
    dev = probe(form)
    with collect(new_mm) as events:
        map_ring(new_mm, dev, pages=2, pgoff=3)
    assert remapped_pfns(events) == [hex((dev.channel.ring_phys >> 12) + 3)]


def test_sysfs_ring_and_uio_map_0_map_the_same_pages(new_mm, form):
    # Michael Kelley's test in the v4 review: both paths reach the same physical ring.
    dev = probe(form)
    with collect(new_mm) as events:
        map_ring(new_mm, dev, page=0)
        mmap_at(new_mm, 16, RING_PAGES, uio.open_device(dev.uio), prot=RW, pgoff=0)
    assert layout(new_mm) == [(0, RING_PAGES), (16, 16 + RING_PAGES)]
    first, second = remapped_pfns(events)
    assert first == second == hex(dev.channel.ring_phys >> 12)


@pytest.mark.parametrize(("profile", "inner"), [("v4", None), ("mainline", VMA_DUMMY_VM_OPS)])
def test_kernfs_records_the_inner_ops_the_compat_write_back_left(make_mm, profile, inner):
    # v4 compat_set_desc_from_vma leaves desc.vm_ops NULL and the write-back copies it;
    # mainline pre-fills it with the VMA's (dummy) ops (docs/drivers.md section 8).
    mm = make_mm(profile)
    dev = probe("new")
    file = hv.open_ring(dev.channel)
    mmap_at(mm, 0, RING_PAGES, file, prot=RW, pgoff=0)
    assert file.private_data.vm_ops is inner


def test_removed_ring_is_enodev(new_mm, form):
    dev = probe(form)
    file = hv.open_ring(dev.channel)
    hv.hv_remove_ring_sysfs(dev.channel)
    with raises_errno(errno.ENODEV):
        mmap_at(new_mm, 0, RING_PAGES, file, prot=RW, pgoff=0)
    with raises_errno(errno.ENOENT):
        hv.open_ring(dev.channel)


def test_compat_failure_leaves_nothing(new_mm):
    with new_mm.inject("action_complete"), raises_errno(errno.ENOMEM):
        map_ring(new_mm, probe("new"))
    assert layout(new_mm) == []
