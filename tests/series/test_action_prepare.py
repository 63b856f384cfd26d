"""mmap_action_prepare and the desc helpers, on hand-built descs (mm/util.c, mm/memory.c)."""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import PGPROT_UC, VM, VMA_REMAP_FLAGS
from vmamodel.events import ActionStep
from vmamodel.file import File
from vmamodel.mmap_action import (
    KernelPage,
    MmapAction,
    MmapActionType,
    mmap_action_ioremap_full,
    mmap_action_map_kernel_pages,
    mmap_action_map_kernel_pages_full,
    mmap_action_prepare,
    mmap_action_remap,
    mmap_action_remap_full,
    mmap_action_simple_ioremap,
    simple_ioremap_prep,
)
from vmamodel.vma import pgprot_noncached

from .util import P, at, make_desc, raises_errno

SHARED = VM.READ | VM.WRITE | VM.MAYREAD | VM.MAYWRITE | VM.SHARED | VM.MAYSHARE
COW = VM.READ | VM.WRITE | VM.MAYREAD | VM.MAYWRITE  # private and may write: CoW
PRIVATE_RO = VM.READ | VM.MAYREAD  # private, never writable: not CoW
FILE = File("/dev/x")


def desc_of(mm, pages=4, flags=SHARED, pgoff=0, page_prot=0):
    return make_desc(mm, FILE, at(0), pages, flags, pgoff=pgoff, page_prot=page_prot)


# -- helpers ------------------------------------------------------------------------------


def test_default_action_is_nothing():
    action = MmapAction()
    assert action.type is MmapActionType.NOTHING
    assert action.success_hook is None and action.error_hook is None
    assert action.error_override == 0 and not action.hide_from_rmap_until_complete


def test_remap_captures_page_prot_at_helper_time(mm):
    desc = desc_of(mm, page_prot=0x3)
    mmap_action_remap(desc, at(1), 0x500, 2 * P)
    desc.page_prot = pgprot_noncached(desc.page_prot)  # too late for the remap
    remap = desc.action.remap
    assert desc.action.type is MmapActionType.REMAP_PFN
    assert (remap.start, remap.start_pfn, remap.size, remap.pgprot) == (at(1), 0x500, 2 * P, 0x3)


def test_remap_full_covers_the_desc(mm):
    desc = desc_of(mm, pages=3)
    mmap_action_remap_full(desc, 0x77)
    assert (desc.action.remap.start, desc.action.remap.size) == (at(0), 3 * P)


def test_ioremap_full_is_io_type(mm):
    desc = desc_of(mm)
    mmap_action_ioremap_full(desc, 0x77)
    assert desc.action.type is MmapActionType.IO_REMAP_PFN


def test_map_kernel_pages_captures_pgoff_at_helper_time(mm):
    desc = desc_of(mm, pgoff=5)
    pages = [KernelPage(i) for i in range(4)]
    mmap_action_map_kernel_pages(desc, at(1), pages, 2)
    desc.pgoff = 9
    mk = desc.action.map_kernel
    assert (mk.start, mk.nr_pages, mk.pgoff) == (at(1), 2, 5)


def test_map_kernel_pages_full_uses_desc_pages(mm):
    desc = desc_of(mm, pages=3)
    mmap_action_map_kernel_pages_full(desc, [KernelPage(i) for i in range(3)])
    assert (desc.action.map_kernel.start, desc.action.map_kernel.nr_pages) == (at(0), 3)


# -- NOTHING ------------------------------------------------------------------------------


def test_nothing_changes_nothing(mm):
    desc = desc_of(mm)
    mmap_action_prepare(mm, desc)
    assert desc.vm_flags == SHARED and desc.pgoff == 0


# -- REMAP_PFN: remap_pfn_range_prepare ----------------------------------------------------


def test_remap_outside_the_desc_is_efault(mm):
    desc = desc_of(mm, pages=2)
    mmap_action_remap(desc, at(1), 0x500, 2 * P)  # ends one page past desc.end
    with raises_errno(errno.EFAULT):
        mmap_action_prepare(mm, desc)
    assert desc.vm_flags == SHARED  # nothing applied


def test_remap_starting_before_the_desc_is_efault(mm):
    desc = desc_of(mm, pages=2)
    mmap_action_remap(desc, at(-1), 0x500, P)
    with raises_errno(errno.EFAULT):
        mmap_action_prepare(mm, desc)


def test_shared_partial_remap_is_allowed_and_keeps_pgoff(mm):
    desc = desc_of(mm, pages=4, pgoff=7)
    mmap_action_remap(desc, at(1), 0x500, P)
    mmap_action_prepare(mm, desc)
    assert desc.pgoff == 7
    assert desc.vm_flags & VMA_REMAP_FLAGS == VMA_REMAP_FLAGS


def test_cow_partial_remap_is_einval(mm):
    desc = desc_of(mm, pages=4, flags=COW)
    mmap_action_remap(desc, at(0), 0x500, 3 * P)
    with raises_errno(errno.EINVAL):
        mmap_action_prepare(mm, desc)
    assert desc.pgoff == 0 and not desc.vm_flags & VM.PFNMAP


def test_cow_full_remap_sets_pgoff_to_the_pfn(mm):
    desc = desc_of(mm, pages=4, flags=COW, pgoff=3)
    mmap_action_remap_full(desc, 0xABC)
    mmap_action_prepare(mm, desc)
    assert desc.pgoff == 0xABC


def test_private_readonly_is_not_cow(mm):
    desc = desc_of(mm, pages=4, flags=PRIVATE_RO, pgoff=3)
    mmap_action_remap(desc, at(1), 0xABC, P)
    mmap_action_prepare(mm, desc)
    assert desc.pgoff == 3


def test_cow_remap_with_unaligned_size_is_einval(mm):
    # The prepare range end is start + size, not page aligned: it must equal desc.end.
    desc = desc_of(mm, pages=2, flags=COW)
    mmap_action_remap(desc, at(0), 0x500, 2 * P - 1)
    with raises_errno(errno.EINVAL):
        mmap_action_prepare(mm, desc)


# -- IO_REMAP_PFN / SIMPLE_IO_REMAP rewrite to REMAP_PFN -----------------------------------


def test_io_remap_rewrites_type(mm):
    desc = desc_of(mm)
    mmap_action_ioremap_full(desc, 0x10)
    mmap_action_prepare(mm, desc)
    assert desc.action.type is MmapActionType.REMAP_PFN


def test_io_remap_failure_keeps_io_type(mm):
    desc = desc_of(mm, pages=1)
    mmap_action_ioremap_full(desc, 0x10)
    desc.action.remap.size = 2 * P
    with raises_errno(errno.EFAULT):
        mmap_action_prepare(mm, desc)
    assert desc.action.type is MmapActionType.IO_REMAP_PFN


def test_simple_ioremap_becomes_full_remap_with_offset_applied(mm):
    desc = desc_of(mm, pages=2, pgoff=1, page_prot=PGPROT_UC)
    mmap_action_simple_ioremap(desc, 0x1000_0000, 4 * P)
    mmap_action_prepare(mm, desc)
    remap = desc.action.remap
    assert desc.action.type is MmapActionType.REMAP_PFN
    assert (remap.start, remap.start_pfn, remap.size) == (at(0), 0x10001, 2 * P)
    assert remap.pgprot == PGPROT_UC  # taken when prepared, after the hook


def test_simple_ioremap_cow_sets_pgoff_to_first_pfn(mm):
    desc = desc_of(mm, pages=1, flags=COW)
    mmap_action_simple_ioremap(desc, 0xFED00000, P)
    mmap_action_prepare(mm, desc)
    assert desc.pgoff == 0xFED00


@pytest.mark.parametrize(
    ("phys", "size", "vm_pages", "pgoff", "err"),
    [
        (0x1000, 4 * P, 4, 0, 0),
        (0x1000, 4 * P, 5, 0, errno.EINVAL),  # mapping longer than the region
        (0x1000, 4 * P, 1, 4, errno.EINVAL),  # pgoff == pages leaves nothing
        (0x1000, 4 * P, 1, 3, 0),
        (0x1000, 4 * P, 1, 5, errno.EINVAL),  # pgoff > pages
        (0x1800, P, 2, 0, 0),  # in-page offset: the region spans two pages
        (0x1800, P, 3, 0, errno.EINVAL),
        ((1 << 64) - P, P, 1, 0, errno.EINVAL),  # phys + size wraps
        ((1 << 64) - 2 * P, P, 1, 0, 0),
    ],
)
def test_simple_ioremap_arithmetic(phys, size, vm_pages, pgoff, err):
    got, _pfn = simple_ioremap_prep(vm_pages * P, pgoff, phys, size)
    assert got == err


def test_simple_ioremap_errors_surface_from_prepare(mm):
    desc = desc_of(mm, pages=2)
    mmap_action_simple_ioremap(desc, 0x1000, P)
    with raises_errno(errno.EINVAL):
        mmap_action_prepare(mm, desc)
    assert desc.action.type is MmapActionType.SIMPLE_IO_REMAP


# -- MAP_KERNEL_PAGES ---------------------------------------------------------------------


def test_map_kernel_pages_adds_mixedmap(mm):
    desc = desc_of(mm, pages=2)
    mmap_action_map_kernel_pages_full(desc, [KernelPage(1), KernelPage(2)])
    mmap_action_prepare(mm, desc)
    assert desc.vm_flags & VM.MIXEDMAP


def test_map_kernel_pages_outside_the_desc_is_efault(mm):
    desc = desc_of(mm, pages=2)
    mmap_action_map_kernel_pages(desc, at(1), [KernelPage(i) for i in range(2)], 2)
    with raises_errno(errno.EFAULT):
        mmap_action_prepare(mm, desc)


# -- profiles -----------------------------------------------------------------------------


def test_6_18_helpers_do_not_exist(make_mm):
    mm = make_mm("6.18")
    with pytest.raises(TypeError):
        mmap_action_simple_ioremap(desc_of(mm), 0x1000, P)


def test_6_18_refuses_a_desc_with_an_action(make_mm):
    mm = make_mm("6.18")
    desc = desc_of(mm)
    desc.action.type = MmapActionType.REMAP_PFN  # set behind the helpers' back
    with pytest.raises(TypeError):
        mmap_action_prepare(mm, desc)


def test_6_18_accepts_the_untouched_default(make_mm):
    mm = make_mm("6.18")
    mmap_action_prepare(mm, desc_of(mm))


def test_mainline_error_override_must_be_an_error_value(make_mm):
    mm = make_mm("mainline")
    desc = desc_of(mm)
    desc.action.error_override = errno.EAGAIN  # positive: not an error value
    with collect_events(mm) as events, raises_errno(errno.EINVAL):
        mmap_action_prepare(mm, desc)
    assert any(e.kind == "WarnOn" for e in events)


def test_mainline_error_override_negative_errno_is_fine(make_mm):
    mm = make_mm("mainline")
    desc = desc_of(mm)
    desc.action.error_override = -errno.EAGAIN
    mmap_action_prepare(mm, desc)


def test_v4_has_no_error_override(mm):
    desc = desc_of(mm)
    desc.action.error_override = -errno.EAGAIN
    with pytest.raises(TypeError):
        mmap_action_prepare(mm, desc)


def test_mainline_has_no_success_hook(make_mm):
    mm = make_mm("mainline")
    desc = desc_of(mm)
    desc.action.success_hook = lambda vma: None
    with pytest.raises(TypeError):
        mmap_action_prepare(mm, desc)


# -- injection and tracing ----------------------------------------------------------------


def test_injected_prepare_failure_only_for_real_actions(mm):
    with mm.inject("action_prepare"):
        mmap_action_prepare(mm, desc_of(mm))  # NOTHING cannot fail
        desc = desc_of(mm)
        mmap_action_remap_full(desc, 1)
        with raises_errno(errno.EINVAL):
            mmap_action_prepare(mm, desc)


def test_prepare_emits_an_action_step(mm):
    desc = desc_of(mm)
    mmap_action_simple_ioremap(desc, 0x1000_0000, 4 * P)
    with collect_events(mm) as events:
        mmap_action_prepare(mm, desc)
    [step] = [e for e in events if isinstance(e, ActionStep)]
    assert (step.step, step.action, step.errno) == ("prepare", "SIMPLE_IO_REMAP", 0)
    assert "REMAP_PFN" in step.detail


def collect_events(mm):
    return mm.tracer.collect()
