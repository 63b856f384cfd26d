"""prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME): anonymous VMA names (vmamodel.anon_name).

The rules of named VMAs run on the ``named`` backends: the model configured like the host but
with CONFIG_ANON_VMA_NAME on, and the host whenever its kernel has that option. This host's
kernel is built without it (the prctl fails with EINVAL whatever its arguments), so here
those rules are checked on the model alone, against the reading of kernel/sys.c
(prctl_set_vma), mm/madvise.c (madvise_set_anon_name, madvise_update_vma), mm/vma.c
(is_mergeable_vma) and fs/proc/task_mmu.c (get_vma_name). What the host does (named or not)
is compared on both backends by the ``mm`` tests at the end and by the differential rule.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import vmamodel as v
from vmamodel.events import MergeRefused
from vmamodel.host import host_model_kwargs
from vmamodel.host.traits import host_has_anon_vma_name
from vmamodel.parse import parse_maps

from .util import NOREPLACE, RO, RW, SHANON, P, at

U64 = (1 << 64) - 1
NAMED_BACKENDS = ["model"] + (
    [pytest.param("host", marks=pytest.mark.host)] if host_has_anon_vma_name() else []
)


def named_model(**kwargs: Any) -> v.AddressSpace:
    return v.AddressSpace(**{**host_model_kwargs(), "anon_vma_name": True, "debug": True,
                             **kwargs})


@pytest.fixture(params=NAMED_BACKENDS)
def named(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh address space of a kernel with CONFIG_ANON_VMA_NAME."""
    if request.param == "host":
        from vmamodel.host import HostAddressSpace

        host = HostAddressSpace()
        try:
            yield host
        finally:
            host.close()
    else:
        yield named_model()


def names(mm: Any) -> list[tuple[int, int, str]]:
    """(first page, end page, maps name) of each VMA in the arena."""
    base = at(0)
    return [
        ((e.start - base) // P, (e.end - base) // P, e.name)
        for e in parse_maps(mm.maps())
        if base <= e.start < base + (1 << 40)
    ]


def map_named(mm: Any, npages: int, name: str) -> None:
    """Private anonymous read-write memory at arena page 0, named all through."""
    mm.mmap(at(0), npages * P, RW, NOREPLACE)
    mm.set_vma_anon_name(at(0), npages * P, name)


def fails(errno_: int, call: Callable[[], object]) -> None:
    with pytest.raises(OSError) as info:
        call()
    assert info.value.errno == errno_


# ---- naming, splitting, merging --------------------------------------------------------------


def test_a_name_shows_as_anon_in_maps(named):
    map_named(named, 4, "pool 1")
    assert names(named) == [(0, 4, "[anon:pool 1]")]
    assert [view.name for view in named.vmas() if view.vm_start >= at(0)] == ["[anon:pool 1]"]


def test_naming_part_of_a_vma_splits_it(named):
    named.mmap(at(0), 4 * P, RW, NOREPLACE)
    named.set_vma_anon_name(at(1), 2 * P, "mid")
    assert names(named) == [(0, 1, ""), (1, 3, "[anon:mid]"), (3, 4, "")]


def test_equal_names_merge_and_different_names_do_not(named):
    named.mmap(at(0), 6 * P, RW, NOREPLACE)
    named.set_vma_anon_name(at(0), 2 * P, "a")
    named.set_vma_anon_name(at(2), 2 * P, "b")
    assert names(named) == [(0, 2, "[anon:a]"), (2, 4, "[anon:b]"), (4, 6, "")]
    named.set_vma_anon_name(at(2), 2 * P, "a")
    assert names(named) == [(0, 4, "[anon:a]"), (4, 6, "")]
    named.set_vma_anon_name(at(4), 2 * P, "a")
    assert names(named) == [(0, 6, "[anon:a]")]


def test_clearing_the_name_merges_back(named):
    named.mmap(at(0), 4 * P, RW, NOREPLACE)
    named.set_vma_anon_name(at(1), P, "x")
    named.set_vma_anon_name(at(1), P, None)
    assert names(named) == [(0, 4, "")]


def test_the_empty_name_is_a_name(named):
    """anon_vma_name_eq(): an empty name is not NULL, so it blocks the merge and prints."""
    named.mmap(at(0), 2 * P, RW, NOREPLACE)
    named.set_vma_anon_name(at(1), P, "")
    assert names(named) == [(0, 1, ""), (1, 2, "[anon:]")]


def test_renaming_to_the_same_name_changes_nothing(named):
    map_named(named, 4, "same")
    named.set_vma_anon_name(at(1), P, "same")
    assert names(named) == [(0, 4, "[anon:same]")]


def test_a_new_mapping_never_merges_with_a_named_one(named):
    """mmap_region's merge proposal has no name (vmg.anon_name NULL)."""
    map_named(named, 2, "n")
    named.mmap(at(2), 2 * P, RW, NOREPLACE)
    assert names(named) == [(0, 2, "[anon:n]"), (2, 4, "")]


def test_mprotect_splits_keep_the_name_and_remerge(named):
    map_named(named, 4, "p")
    named.mprotect(at(1), P, RO)
    assert names(named) == [(0, 1, "[anon:p]"), (1, 2, "[anon:p]"), (2, 4, "[anon:p]")]
    named.mprotect(at(1), P, RW)
    assert names(named) == [(0, 4, "[anon:p]")]


def test_munmap_pieces_keep_the_name(named):
    map_named(named, 4, "cut")
    named.munmap(at(1), P)
    assert names(named) == [(0, 1, "[anon:cut]"), (2, 4, "[anon:cut]")]


def test_mremap_keeps_the_name_and_merges_only_with_the_same_name(named):
    for page, name in ((0, "m"), (4, None), (8, "m")):
        named.mmap(at(page), 2 * P, RW, NOREPLACE)
        named.set_vma_anon_name(at(page), 2 * P, name)
    flags = v.MREMAP_MAYMOVE | v.MREMAP_FIXED
    named.mremap(at(4), 2 * P, 2 * P, flags, at(10))  # unnamed next to "m": no merge
    named.mremap(at(0), 2 * P, 2 * P, flags, at(6))  # "m" before "m": one VMA
    assert names(named) == [(6, 10, "[anon:m]"), (10, 12, "")]


def test_fork_copies_the_name(named):
    named.mmap(at(0), 2 * P, RW, NOREPLACE)
    named.set_vma_anon_name(at(0), P, "kid")
    child = named.fork()
    try:
        assert names(child) == names(named) == [(0, 1, "[anon:kid]"), (1, 2, "")]
    finally:
        if hasattr(child, "close"):
            child.close()


def test_shared_anonymous_memory_shows_anon_shmem(named):
    named.mmap(at(0), 2 * P, RW, SHANON)
    before = parse_maps(named.maps())[-1]
    named.set_vma_anon_name(at(0), 2 * P, "shm")
    after = [e for e in parse_maps(named.maps()) if e.start == at(0)]
    assert [(e.name, e.dev, e.inode) for e in after] == [
        ("[anon_shmem:shm]", before.dev, before.inode)
    ]


def test_a_named_vma_in_the_heap_shows_heap_and_brk_does_not_grow_it(named):
    """get_vma_name() prints [heap] before any anon name; do_brk_flags' proposal has no name,
    so the named heap VMA is not expanded: the break grows into a new VMA."""
    base = named.start_brk
    named.brk(base + 2 * P)
    named.set_vma_anon_name(base, 2 * P, "h")
    named.brk(base + 4 * P)
    heap = [(e.start - base) // P for e in parse_maps(named.maps()) if e.name == "[heap]"]
    assert heap == [0, 2]


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("length, ok", [(79, True), (80, False), (200, False)])
def test_a_name_has_at_most_79_bytes(named, length, ok):
    named.mmap(at(0), P, RW, NOREPLACE)
    call = lambda: named.set_vma_anon_name(at(0), P, "n" * length)  # noqa: E731
    if ok:
        call()
        assert names(named) == [(0, 1, f"[anon:{'n' * length}]")]
    else:
        fails(errno.EINVAL, call)
        assert names(named) == [(0, 1, "")]


@pytest.mark.parametrize("name", ["a[b", "a]", "back\\slash", "$HOME", "`x`", "tab\t", "\x7f",
                                  "nl\n", "caf\u00e9"])
def test_forbidden_characters_are_einval(named, name):
    named.mmap(at(0), P, RW, NOREPLACE)
    fails(errno.EINVAL, lambda: named.set_vma_anon_name(at(0), P, name))
    assert names(named) == [(0, 1, "")]


def test_the_name_is_checked_before_the_range(named):
    """A bad name over nothing mapped is EINVAL, not ENOMEM."""
    fails(errno.EINVAL, lambda: named.set_vma_anon_name(at(0), P, "[x]"))


def test_the_name_ends_at_a_nul(named):
    named.mmap(at(0), P, RW, NOREPLACE)
    named.set_vma_anon_name(at(0), P, "cut\0$tail")
    assert names(named) == [(0, 1, "[anon:cut]")]


@pytest.mark.parametrize(
    "start, length",
    [(at(0) + 1, P), (at(0), U64), (at(0), U64 - P + 2), (U64 + 1 - P, 2 * P)],
    ids=["unaligned", "rounds-to-zero", "rounds-to-zero-2", "wraps"],
)
def test_bad_ranges_are_einval(named, start, length):
    named.mmap(at(0), P, RW, NOREPLACE)
    fails(errno.EINVAL, lambda: named.set_vma_anon_name(start, length, "r"))


def test_an_empty_range_succeeds_with_nothing_mapped(named):
    named.set_vma_anon_name(at(0), 0, "empty")
    named.set_vma_anon_name(at(0), 0, None)
    assert names(named) == []


def test_holes_are_enomem_after_the_whole_range_is_named(named):
    named.mmap(at(0), 2 * P, RW, NOREPLACE)
    named.mmap(at(3), 2 * P, RO, NOREPLACE)
    fails(errno.ENOMEM, lambda: named.set_vma_anon_name(at(0), 6 * P, "holey"))
    assert names(named) == [(0, 2, "[anon:holey]"), (3, 5, "[anon:holey]")]


def test_nothing_mapped_is_enomem(named):
    fails(errno.ENOMEM, lambda: named.set_vma_anon_name(at(0), P, "none"))


def test_a_file_mapping_stops_the_walk_with_ebadf(named):
    """Only anonymous memory can be named: a memfd (shmem, but not anonymous shmem) is EBADF;
    the VMAs before it keep their new name, those after it are not reached."""
    file = v.memfd_create("anon-name", 4 * P)
    named.mmap(at(0), P, RW, NOREPLACE)
    named.mmap(at(1), P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, file, 0)
    named.mmap(at(2), P, RO, NOREPLACE)
    fails(errno.EBADF, lambda: named.set_vma_anon_name(at(0), 3 * P, "f"))
    got = names(named)
    assert got[0] == (0, 1, "[anon:f]")
    assert got[1][2].startswith("/memfd:anon-name")
    assert got[2] == (2, 3, "")


# ---- the model alone: limits, events, seeding, configuration ---------------------------------


def test_a_split_beyond_max_map_count_is_eagain():
    """madvise_update_vma: split_vma's ENOMEM is reported as EAGAIN."""
    mm = named_model(max_map_count=1)
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    fails(errno.EAGAIN, lambda: mm.set_vma_anon_name(at(1), P, "x"))
    assert names(mm) == [(0, 4, "")]


def test_a_refused_merge_names_the_rule():
    mm = named_model()
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.set_vma_anon_name(at(0), P, "left")
    events: list[Any] = []
    mm.tracer.subscribe(events.append)
    mm.set_vma_anon_name(at(1), P, "right")
    refusals = [(e.side, e.rule) for e in events if isinstance(e, MergeRefused)]
    assert refusals == [("prev", "anon_vma_name")]


def test_maps_with_names_seed_a_model_that_prints_them_back():
    mm = named_model()
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.mmap(at(4), 2 * P, RW, SHANON)
    mm.set_vma_anon_name(at(1), 2 * P, "seeded one")
    mm.set_vma_anon_name(at(4), 2 * P, "shared")
    text = mm.maps()
    seeded = v.AddressSpace.from_maps(text, **{**host_model_kwargs(), "anon_vma_name": True})
    assert seeded.maps() == text
    assert [e.anon_name for e in parse_maps(text)] == [None, "seeded one", None, "shared"]
    vma = seeded.find_vma(at(4))
    assert vma.vm_file.kind == "shmem_zero" and vma.vm_flags & v.VM.SHARED
    seeded.set_vma_anon_name(at(0), P, "seeded one")  # seeded names merge like real ones
    assert names(seeded)[0] == (0, 3, "[anon:seeded one]")


def test_maps_with_names_need_the_kernel_option():
    line = f"{at(0):x}-{at(1):x} rw-p 00000000 00:00 0"
    text = line.ljust(72) + " [anon:x]\n"
    with pytest.raises(ValueError, match="CONFIG_ANON_VMA_NAME"):
        v.AddressSpace.from_maps(text, anon_vma_name=False)


def test_without_the_kernel_option_every_call_is_einval():
    """The stub prctl_set_vma: EINVAL before any argument is looked at."""
    mm = v.AddressSpace(**{**host_model_kwargs(), "anon_vma_name": False})
    mm.mmap(at(0), P, RW, NOREPLACE)
    for args in [(at(0), P, "ok"), (at(0), 0, None), (at(0) + 1, P, "[bad]")]:
        fails(errno.EINVAL, lambda args=args: mm.set_vma_anon_name(*args))
    assert names(mm) == [(0, 1, "")]


# ---- both backends, configured like this host ------------------------------------------------


@pytest.mark.parametrize("args", [
    (0, 2, "ok"), (1, 1, None), (0, 0, "empty"), (0, 2, "[bad]"), (5, 1, "hole"),
])
def test_the_host_and_the_model_agree_on_one_call(mm, args):
    """Whatever the host's configuration, the model configured like it gives the same result
    and leaves the same maps."""
    page, npages, name = args
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    try:
        mm.set_vma_anon_name(at(page), npages * P, name)
        result = 0
    except OSError as exc:
        result = exc.errno
    expected = _expected(page, npages, name)
    assert (result, names(mm)) == expected


def _expected(page: int, npages: int, name: str | None) -> tuple[int, list[tuple[int, int, str]]]:
    """What a fresh two-page mapping gives on this host's kernel (derived from its option)."""
    plain = [(0, 2, "")]
    if not host_has_anon_vma_name():
        return errno.EINVAL, plain
    if name is not None and "[" in name:
        return errno.EINVAL, plain
    if npages == 0:
        return 0, plain
    if page >= 2:
        return errno.ENOMEM, plain
    if name is None:
        return 0, plain
    return 0, [(0, 2, f"[anon:{name}]")]
