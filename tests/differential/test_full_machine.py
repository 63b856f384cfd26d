"""Every call at once: mmap, munmap, mprotect, touch, mremap, madvise, the mlock family, brk,
anonymous VMA names, fork and exit drawn from in one sequence, on the model and on the host,
compared after every step (results, maps, VmFlags, protection keys, and every process of the
family)."""

from __future__ import annotations

import pytest

from .machine import run_machine
from .rules_anon_name import AnonNameRules
from .rules_brk import BrkRules
from .rules_fork import ForkRules
from .rules_madvise import MadviseRules
from .rules_mlock import MlockRules
from .rules_mremap import MremapRules
from .test_core_machine import CoreMachine

pytestmark = pytest.mark.host


class FullMachine(
    MremapRules, MadviseRules, MlockRules, BrkRules, ForkRules, AnonNameRules, CoreMachine
):
    """All rule sets mixed; hypothesis draws each step from the union of their rules."""


def test_full_machine() -> None:
    run_machine(FullMachine, minimum=5000, scale=3)
