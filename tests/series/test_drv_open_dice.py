"""open-dice (drivers/misc/open-dice.c, v4 12/21): the reserved DICE region, both forms."""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import PGPROT_CACHE_MASK, PGPROT_WC, VM, VMA_REMAP_FLAGS
from vmamodel.drivers import open_dice

from .util import (
    PRIVATE_FIXED,
    RO,
    RW,
    SHARED_FIXED,
    P,
    at,
    flags_at,
    layout,
    maps_offset,
    mmap_at,
    raises_errno,
    vma_at,
)

BASE = 0x8000_0000


def dice(form: str, base: int = BASE, size: int = 2 * P) -> object:
    return open_dice.open_device(open_dice.OpenDiceDevice(base, size), form=form)


def test_shared_writable_is_eperm(new_mm, form):
    with raises_errno(errno.EPERM):
        mmap_at(new_mm, 0, 1, dice(form), prot=RW, pgoff=0)
    assert layout(new_mm) == []


def test_shared_read_only_loses_maywrite_for_good(new_mm, form):
    mmap_at(new_mm, 0, 1, dice(form), prot=RO, pgoff=0)
    assert not flags_at(new_mm, 0) & VM.MAYWRITE
    with raises_errno(errno.EACCES):
        new_mm.mprotect(at(0), P, RW)


def test_private_writable_keeps_maywrite_and_shows_the_base_pfn(new_mm, form):
    mmap_at(new_mm, 0, 2, dice(form), prot=RW, flags=PRIVATE_FIXED, pgoff=0)
    assert flags_at(new_mm, 0) & VM.MAYWRITE
    assert maps_offset(new_mm, 0) == BASE


@pytest.mark.parametrize("flags", [SHARED_FIXED, PRIVATE_FIXED])
def test_flags_and_write_combining(new_mm, form, flags):
    mmap_at(new_mm, 0, 1, dice(form), prot=RO, flags=flags, pgoff=0)
    wanted = VMA_REMAP_FLAGS | VM.DONTCOPY | VM.DONTDUMP
    assert flags_at(new_mm, 0) & wanted == wanted
    assert vma_at(new_mm, 0).vm_page_prot & PGPROT_CACHE_MASK == PGPROT_WC


def test_never_merges(new_mm, form):
    file = dice(form)
    mmap_at(new_mm, 0, 1, file, prot=RO, pgoff=0)
    mmap_at(new_mm, 1, 1, file, prot=RO, pgoff=1)
    assert layout(new_mm) == [(0, 1), (1, 2)]


@pytest.mark.parametrize(
    ("base", "size", "pages", "pgoff", "err"),
    [
        (BASE, 2 * P, 2, 0, 0),
        (BASE, 2 * P, 3, 0, errno.EINVAL),  # longer than the region
        (BASE, 2 * P, 1, 1, 0),
        (BASE, 2 * P, 1, 2, errno.EINVAL),  # offset at the end of the region
        (BASE, 2 * P, 1, 3, errno.EINVAL),  # offset beyond it
        (BASE + 0x800, P, 2, 0, 0),  # an in-page base spans one more page
        (BASE + 0x800, P, 3, 0, errno.EINVAL),
    ],
)
def test_region_bounds(new_mm, form, base, size, pages, pgoff, err):
    file = dice(form, base, size)
    if err:
        with raises_errno(err):
            mmap_at(new_mm, 0, pages, file, prot=RO, pgoff=pgoff)
        assert layout(new_mm) == []
    else:
        mmap_at(new_mm, 0, pages, file, prot=RO, pgoff=pgoff)
        assert layout(new_mm) == [(0, pages)]
