"""hpet (drivers/char/hpet.c): checks and errno of both forms, flags, offsets, no merging.

The new form (v4 13/21) fails its length/offset checks in action prepare, before a VMA
exists; the old one inside ``.mmap`` on an allocated VMA. User space sees the same errno,
flags and maps offset column from both.
"""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import (
    MAP_PRIVATE,
    O_RDONLY,
    O_RDWR,
    PGPROT_CACHE_MASK,
    PGPROT_UC,
    VM,
    VMA_REMAP_FLAGS,
)
from vmamodel.driver_error import DriverError
from vmamodel.drivers import hpet
from vmamodel.events import HookCall, MergeRefused, VmaCreated

from .util import (
    PRIVATE_FIXED,
    RO,
    RW,
    SHARED_FIXED,
    P,
    at,
    collect,
    errno_of,
    flags_at,
    layout,
    maps_offset,
    mmap_at,
    raises_errno,
    vma_at,
)

FORMS = ["new", "old"]


@pytest.fixture(params=FORMS)
def form(request: pytest.FixtureRequest) -> str:
    return request.param


def hpet_file(form: str, **device: object) -> object:
    return hpet.open_device(hpet.HpetDevice(**device), form=form)  # type: ignore[arg-type]


def map_hpet(mm, file, *, page=0, pages=1, pgoff=0, flags=SHARED_FIXED, prot=RO):
    return mmap_at(mm, page, pages, file, prot=prot, flags=flags, pgoff=pgoff)


def test_open_for_writing_is_einval():
    with raises_errno(errno.EINVAL):
        hpet.open_device(hpet.HpetDevice(), O_RDWR)


@pytest.mark.parametrize(("pages", "pgoff"), [(1, 0), (2, 0), (1, 1), (1, 5)])
def test_disabled_is_eacces_before_any_other_check(new_mm, form, pages, pgoff):
    file = hpet_file(form, mmap_enabled=False)
    with raises_errno(errno.EACCES):
        map_hpet(new_mm, file, pages=pages, pgoff=pgoff)
    assert layout(new_mm) == []


@pytest.mark.parametrize(("pages", "pgoff"), [(1, 0), (2, 0), (1, 1)])
def test_unaligned_base_is_enosys_before_length_and_offset(new_mm, form, pages, pgoff):
    file = hpet_file(form, phys=hpet.HPET_DEFAULT_PHYS + 0x400)
    with raises_errno(errno.ENOSYS):
        map_hpet(new_mm, file, pages=pages, pgoff=pgoff)


def test_config_off_is_enosys(new_mm, form):
    with raises_errno(errno.ENOSYS):
        map_hpet(new_mm, hpet_file(form, config_mmap=False, mmap_enabled=False))


@pytest.mark.parametrize(("pages", "pgoff"), [(2, 0), (1, 1), (1, 2)])
def test_wrong_length_or_offset_is_einval(new_mm, form, pages, pgoff):
    with raises_errno(errno.EINVAL):
        map_hpet(new_mm, hpet_file(form), pages=pages, pgoff=pgoff)
    assert layout(new_mm) == []


def test_success_flags_and_noncached_prot(new_mm, form):
    map_hpet(new_mm, hpet_file(form))
    assert layout(new_mm) == [(0, 1)]
    assert flags_at(new_mm, 0) & VMA_REMAP_FLAGS == VMA_REMAP_FLAGS
    assert vma_at(new_mm, 0).vm_page_prot & PGPROT_CACHE_MASK == PGPROT_UC


def test_noncached_prot_survives_mprotect(new_mm, form):
    map_hpet(new_mm, hpet_file(form))
    new_mm.mprotect(at(0), P, 0)
    assert vma_at(new_mm, 0).vm_page_prot & PGPROT_CACHE_MASK == PGPROT_UC


def test_private_mapping_shows_the_hpet_base_as_offset(new_mm, form):
    # The CoW remap rewrites vm_pgoff to the PFN (remap_pfn_range_prepare / _prepare_vma).
    map_hpet(new_mm, hpet_file(form), flags=PRIVATE_FIXED, prot=RW)
    assert maps_offset(new_mm, 0) == hpet.HPET_DEFAULT_PHYS
    assert flags_at(new_mm, 0) & VM.MAYWRITE


def test_shared_mapping_shows_offset_zero_and_no_maywrite(new_mm, form):
    map_hpet(new_mm, hpet_file(form))
    assert maps_offset(new_mm, 0) == 0
    assert not flags_at(new_mm, 0) & VM.MAYWRITE  # the file is read-only


def test_shared_writable_is_eacces_in_do_mmap(new_mm, form):
    with raises_errno(errno.EACCES):
        map_hpet(new_mm, hpet_file(form), prot=RW)


def test_adjacent_mappings_never_merge(new_mm, form):
    file = hpet_file(form)
    map_hpet(new_mm, file, page=0)
    with collect(new_mm) as events:
        map_hpet(new_mm, file, page=1)
    assert layout(new_mm) == [(0, 1), (1, 2)]
    refusals = [(e.side, e.rule) for e in events if isinstance(e, MergeRefused)]
    # The new form's flags are special before the merge attempt; the old form's merge
    # attempt sees plain flags (.mmap runs later) that differ from the special prev.
    assert refusals == [("prev", "VM_SPECIAL" if form == "new" else "vm_flags")]


def test_no_vm_ops_hooks_run(new_mm, form):
    file = hpet_file(form)
    with collect(new_mm) as events:
        map_hpet(new_mm, file)
        new_mm.munmap(at(0), P)
    hooks = {e.hook for e in events if isinstance(e, HookCall)}
    assert hooks == {"mmap_prepare" if form == "new" else "mmap"}


def test_new_form_fails_before_a_vma_exists_old_form_after(new_mm, form):
    with collect(new_mm) as events, raises_errno(errno.EINVAL):
        map_hpet(new_mm, hpet_file(form), pages=2)
    created = [e for e in events if isinstance(e, VmaCreated)]
    calls = [e for e in events if isinstance(e, HookCall)]
    assert created == []
    if form == "new":
        assert [(c.hook, c.vma_id, c.errno) for c in calls] == [("mmap_prepare", None, 0)]
    else:
        [call] = calls
        assert (call.hook, call.errno) == ("mmap", errno.EINVAL) and call.vma_id is not None


def test_failure_over_an_existing_mapping_leaves_a_hole(new_mm, form):
    # Both forms fail after the old range was torn down (vms_abort_munmap_vmas()).
    good = hpet_file(form)
    map_hpet(new_mm, good, page=0)
    map_hpet(new_mm, good, page=2)
    with raises_errno(errno.EINVAL):
        map_hpet(new_mm, good, page=1, pages=2)
    assert layout(new_mm) == [(0, 1)]


def test_same_errno_in_both_forms_for_every_request(new_mm, make_mm):
    requests = [
        dict(pages=1, pgoff=0), dict(pages=2, pgoff=0), dict(pages=1, pgoff=1),
        dict(pages=1, pgoff=0, prot=RW), dict(pages=1, pgoff=0, flags=PRIVATE_FIXED, prot=RW),
    ]
    results: dict[str, list[int]] = {form: [] for form in FORMS}
    for form in FORMS:
        mm = make_mm(new_mm.profile.name)
        for i, request in enumerate(requests):
            file = hpet_file(form)
            results[form].append(
                errno_of(lambda: map_hpet(mm, file, page=4 * i, **request))  # noqa: B023
            )
    assert results["new"] == results["old"] == [0, errno.EINVAL, errno.EINVAL, errno.EACCES, 0]


def test_read_only_open_flags_are_o_rdonly():
    file = hpet.open_device(hpet.HpetDevice())
    assert file.flags == O_RDONLY and not file.writable


def test_6_18_has_no_actions_so_the_new_form_cannot_build(make_mm):
    mm = make_mm("6.18")
    with pytest.raises(DriverError) as info:  # would not compile: a driver bug
        map_hpet(mm, hpet_file("new"))
    assert isinstance(info.value.__cause__, TypeError)
    map_hpet(mm, hpet_file("old"))
    assert flags_at(mm, 0) & VMA_REMAP_FLAGS == VMA_REMAP_FLAGS


def test_private_read_only_is_still_cow(new_mm, form):
    # A private mapping keeps VM_MAYWRITE whatever prot says: the PFN becomes the pgoff.
    new_mm.mmap(at(0), P, RO, MAP_PRIVATE, hpet_file(form), 0)
    [vma] = new_mm.vmas()
    assert vma.vm_pgoff == hpet.HPET_DEFAULT_PHYS >> 12
