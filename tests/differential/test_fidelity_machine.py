"""The core machine (mmap, munmap, mprotect, touch) plus madvise, KSM merge-any, mbind,
userfaultfd registration, SysV shmat/shmdt and /dev/zero mappings, on the model and on the
host: results, maps and VmFlags must agree after every step (the merge rules now compare
policies and userfaultfd contexts)."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

import vmamodel as v
from vmamodel.fuzz.generate import target_page
from vmamodel.vma import vma_uffd_ctx

from .machine import PAGES, PROTS, P, at, run_machine
from .rules_fidelity import FidelityRules
from .rules_madvise import ADVICES, LENGTHS, TARGETS, MadviseRules
from .test_core_machine import KINDS, CoreMachine

#: Advices that fault pages in: on memory a userfaultfd watches they would wait for a
#: handler that does not exist (the host child would hang).
FAULTING = {v.MADV_POPULATE_READ, v.MADV_POPULATE_WRITE}

pytestmark = pytest.mark.host


class FidelityMachine(FidelityRules, MadviseRules, CoreMachine):
    @initialize(
        maps=st.lists(st.tuples(PAGES, st.integers(1, 8), PROTS, KINDS), min_size=1, max_size=4)
    )
    def populate_window(self, maps: list[tuple[int, int, int, str]]) -> None:
        """A few mappings first, so that the calls meet VMAs."""
        for page, npages, prot, kind in maps:
            self.mmap(page, npages, prot, kind, False, 0, page)

    def watched(self, start: int, end: int) -> bool:
        """Whether a userfaultfd watches any VMA of [start, end) (model and host agree)."""
        return any(
            vma.vm_start < end and vma.vm_end > start and vma_uffd_ctx(vma) is not None
            for vma in self.model.tree
        )

    @rule(page=PAGES, write=st.booleans())
    def touch(self, page: int, write: bool) -> None:
        """No faults where a userfaultfd watches: nobody would answer them."""
        if not self.watched(at(page), at(page) + P):
            super().touch(page, write)

    @rule(near=TARGETS, npages=LENGTHS, advice=ADVICES, skew=st.sampled_from([0] * 10 + [1, 100]))
    def madvise(self, near: tuple[int, int], npages: int, advice: int, skew: int) -> None:
        page = target_page(self.model, *near)
        if advice in FAULTING and self.watched(at(page), at(page) + npages * P + P):
            return
        super().madvise(near, npages, advice, skew)


def test_fidelity_machine() -> None:
    run_machine(FidelityMachine, minimum=1500)
