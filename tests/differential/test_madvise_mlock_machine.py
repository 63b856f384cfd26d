"""The core machine (mmap, munmap, mprotect, touch) plus madvise and the mlock family, on the
model and on the host: results, maps, VmFlags, guard faults and locked_vm must agree."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize

from .machine import PAGES, PROTS, run_machine
from .rules_madvise import MadviseRules
from .rules_mlock import MlockRules
from .test_core_machine import KINDS, CoreMachine

pytestmark = pytest.mark.host


class MadviseMlockMachine(MadviseRules, MlockRules, CoreMachine):
    @initialize(
        maps=st.lists(st.tuples(PAGES, st.integers(1, 8), PROTS, KINDS), min_size=1, max_size=4)
    )
    def populate_window(self, maps: list[tuple[int, int, int, str]]) -> None:
        """A few mappings first, so that the advice and lock calls meet VMAs."""
        for page, npages, prot, kind in maps:
            self.mmap(page, npages, prot, kind, False, 0, page)


def test_madvise_mlock_machine() -> None:
    run_machine(MadviseMlockMachine, minimum=2000)
