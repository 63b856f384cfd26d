"""The core machine (mmap, munmap, mprotect, touch) with fork/exit (and madvise, whose
DONTFORK, WIPEONFORK and guard markers matter to fork), and with brk, on the model and on the
host: results, maps, VmFlags and protection keys of every process of the family must agree
after each step."""

from __future__ import annotations

import pytest

from .machine import run_machine
from .rules_brk import BrkRules
from .rules_fork import ForkRules
from .rules_madvise import MadviseRules
from .test_core_machine import CoreMachine

pytestmark = pytest.mark.host


class ForkMachine(ForkRules, MadviseRules, CoreMachine):
    pass


class ForkBrkMachine(BrkRules, ForkRules, CoreMachine):
    pass


def test_fork_machine() -> None:
    run_machine(ForkMachine, minimum=1500)


def test_fork_brk_machine() -> None:
    run_machine(ForkBrkMachine, minimum=1500)
