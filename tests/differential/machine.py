"""The shared harness of the differential state machines: one host child per test session,
a fresh model per example, and a comparison after every step."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

import vmamodel as v
from vmamodel.fuzz import generate as gen
from vmamodel.fuzz.generate import WINDOW, P, at
from vmamodel.host import host_model_kwargs
from vmamodel.scenario.compare import InodeNumbering

__all__ = ["WINDOW", "P", "at"]

# The domains and builders of the calls live in vmamodel.fuzz.generate (shared with
# ``vmamodel fuzz``); the machines draw from them with hypothesis strategies.
PROTS = st.sampled_from(gen.PROTS)
PAGES = st.integers(*gen.PAGE_RANGE)
LENGTHS = st.integers(*gen.LENGTH_RANGE)

#: Examples per machine: the CI profile runs enough for >= 2,000 calls in all; raise it
#: locally with VMAMODEL_EXAMPLES to explore.
EXAMPLES = int(os.environ.get("VMAMODEL_EXAMPLES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=25, deadline=None)

_HOST: list[Any] = []


def shared_host() -> Any:
    """One host child for the whole session, emptied before each example."""
    from vmamodel.host import HostAddressSpace

    if not _HOST or not _HOST[0].alive:
        _HOST[:] = [HostAddressSpace()]
    host = _HOST[0]
    host.reset()
    return host


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except OSError as exc:
        return ("errno", exc.errno)


def smaps_keys(smaps: str) -> list[str]:
    """The VMA-level lines of smaps that the model reproduces."""
    return [line for line in smaps.splitlines() if line.startswith(("VmFlags:", "ProtectionKey:"))]


class DifferentialMachine(RuleBasedStateMachine):
    """Runs every call on the model and on the host and requires identical results."""

    #: Calls compared since the last run_machine(); the run checks it reached its share.
    calls = 0

    def __init__(self) -> None:
        super().__init__()
        self.model = self.make_model()
        self.host = shared_host()
        self.log: list[str] = []

    def make_model(self) -> Any:
        return v.AddressSpace(debug=True, **host_model_kwargs())

    def both(self, name: str, *args: Any, **kwargs: Any) -> tuple[str, Any]:
        self.log.append(f"{name}{args}{kwargs or ''}")
        type(self).calls += 1
        want = outcome(lambda: getattr(self.host, name)(*args, **kwargs))
        got = outcome(lambda: getattr(self.model, name)(*args, **kwargs))
        assert got == want, f"{name}{args}: model {got} != host {want}\n" + self.history()
        self.check_state()
        return got

    def check_state(self) -> None:
        want_maps = InodeNumbering().text(self.host.maps())
        got_maps = InodeNumbering().text(self.model.maps())
        assert got_maps == want_maps, (
            f"maps differ\n--- model\n{got_maps}--- host\n{want_maps}" + self.history()
        )
        want_flags, got_flags = smaps_keys(self.host.smaps()), smaps_keys(self.model.smaps())
        assert got_flags == want_flags, (
            f"smaps differ\nmodel {got_flags}\nhost  {want_flags}\n{want_maps}" + self.history()
        )

    def history(self) -> str:
        return "\nsteps:\n  " + "\n  ".join(self.log)


def run_machine(machine: type[DifferentialMachine], minimum: int, scale: int = 1) -> int:
    """Runs a machine under SETTINGS (``scale`` times the examples) and checks that it
    compared at least ``minimum`` calls (scaled by VMAMODEL_EXAMPLES), so a generator that
    degenerates cannot pass quietly."""
    machine.calls = 0
    run_state_machine_as_test(machine, settings=settings(SETTINGS, max_examples=EXAMPLES * scale))
    assert machine.calls >= minimum * EXAMPLES // 100, (
        f"{machine.__name__} compared only {machine.calls} calls"
    )
    return machine.calls
