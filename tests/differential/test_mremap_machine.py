"""The core machine (mmap, munmap, mprotect, touch) with mremap mixed in, on the model and on
the host: results, maps, VmFlags and protection keys must be identical after every step.
Faults before and after moves make anon_vma state (which decides merges) part of the test."""

from __future__ import annotations

import pytest

from . import test_core_machine as core
from .machine import run_machine
from .rules_mremap import MremapRules

pytestmark = pytest.mark.host


class MremapMachine(MremapRules, core.CoreMachine):
    """CoreMachine's rules and the mremap rules, drawn from in one sequence."""


def test_mremap_machine() -> None:
    run_machine(MremapMachine, minimum=2000)
