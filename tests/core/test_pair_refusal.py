"""vma_pair_refusal: the rule that keeps two touching VMAs of an existing model apart (model
only: it reads the model's VMAs; the same rules are judged against the host in test_merge)."""

from __future__ import annotations

import itertools

import vmamodel as v
from vmamodel.merge import vma_pair_refusal

from .util import NOREPLACE, RO, RW, SHANON, P, at


def _pairs(mm: v.AddressSpace) -> list[str | None]:
    vmas = list(mm.tree)
    return [
        vma_pair_refusal(mm, prev, vma)
        for prev, vma in itertools.pairwise(vmas)
        if prev.vm_end == vma.vm_start
    ]


def test_flags_differ() -> None:
    mm = v.AddressSpace()
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.mprotect(at(1), P, RO)
    assert _pairs(mm) == ["vm_flags", "vm_flags"]


def test_different_anon_vmas() -> None:
    mm = v.AddressSpace()
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.mmap(at(2), P, RW, NOREPLACE)
    mm.touch(at(2), write=True)
    mm.mremap(at(2), P, P, v.MREMAP_MAYMOVE | v.MREMAP_FIXED, at(1))
    assert _pairs(mm) == ["anon_vma: different anon_vmas"]


def test_different_files_and_offsets() -> None:
    mm = v.AddressSpace()
    shared = v.MAP_SHARED | v.MAP_FIXED_NOREPLACE
    one, two = v.memfd_create("one", 16 * P), v.memfd_create("two", 16 * P)
    mm.mmap(at(0), P, RW, shared, one, 0)
    mm.mmap(at(1), P, RW, shared, two, P)
    mm.mmap(at(2), P, RW, shared, two, 5 * P)
    assert _pairs(mm) == ["vm_file", "vm_pgoff not contiguous"]


def test_shared_anonymous_ranges_are_different_files() -> None:
    mm = v.AddressSpace()
    mm.mmap(at(0), P, RW, SHANON)
    mm.mmap(at(1), P, RW, SHANON)
    assert _pairs(mm) == ["vm_file"]


def test_nothing_keeps_a_split_that_merging_would_undo_apart() -> None:
    mm = v.AddressSpace()
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mprotect(at(1), P, RO)
    vmas = list(mm.tree)
    vmas[1].vm_flags = vmas[0].vm_flags  # as if the mprotect had not run
    assert vma_pair_refusal(mm, vmas[0], vmas[1]) is None
