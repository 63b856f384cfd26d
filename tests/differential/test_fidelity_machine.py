"""The core machine (mmap, munmap, mprotect, touch) plus madvise, KSM merge-any, mbind and
userfaultfd registration, on the model and on the host: results, maps and VmFlags must
agree after every step (the merge rules now compare policies and userfaultfd contexts)."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize

from .machine import PAGES, PROTS, run_machine
from .rules_fidelity import FidelityRules
from .rules_madvise import MadviseRules
from .test_core_machine import KINDS, CoreMachine

pytestmark = pytest.mark.host


class FidelityMachine(FidelityRules, MadviseRules, CoreMachine):
    @initialize(
        maps=st.lists(st.tuples(PAGES, st.integers(1, 8), PROTS, KINDS), min_size=1, max_size=4)
    )
    def populate_window(self, maps: list[tuple[int, int, int, str]]) -> None:
        """A few mappings first, so that the calls meet VMAs."""
        for page, npages, prot, kind in maps:
            self.mmap(page, npages, prot, kind, False, 0, page)


def test_fidelity_machine() -> None:
    run_machine(FidelityMachine, minimum=1500)
