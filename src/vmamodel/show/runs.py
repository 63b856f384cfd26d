"""Films of scenario runs: a :class:`Recorder` observing the scenario executor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vmamodel.host import heap_start
from vmamodel.scenario import (
    ARENA_SIZE,
    ModelBackend,
    Run,
    Scenario,
    StepRecord,
    execute,
    options_for,
)
from vmamodel.scenario.ast import Call, Marker
from vmamodel.scenario.executor import Observer
from vmamodel.show.model import Film, Recorder


def recorder_for(scenario: Scenario, base: int, *, verify: bool = False) -> Recorder:
    """A recorder for a run of ``scenario`` at arena ``base``: gaps are measured in the arena."""
    bounds = (base, base + ARENA_SIZE) if scenario.layout == "arena" else None
    return Recorder(scenario.path, bounds, verify=verify)


def observer(recorder: Recorder) -> Observer:
    """The executor observer that records each call (markers draw nothing new) into a film."""

    def observe(index: int, record: StepRecord, spaces: Sequence[tuple[str, Any]]) -> None:
        statement = record.statement
        if isinstance(statement, Marker) or record.outcome is None:
            return
        outcome = record.outcome
        recorder.record(spaces, text=call_text(statement), result=outcome.describe(), ok=outcome.ok,
                        errno=outcome.errno, line=statement.line,
                        expectation=record.failed_expectation, events=record.events)

    return observe


def call_text(statement: Call) -> str:
    """The call as written, without the expectation after it (the result is shown instead)."""
    if statement.expect is not None:
        return statement.text[: statement.text.rindex(")") + 1]
    return statement.text


def film_of_scenario(scenario: Scenario, *, profile: str | None = None,
                     base: int | None = None, verify: bool = False) -> tuple[Film, Run]:
    """Run ``scenario`` on the model and film it; the run tells of errors and expectations.
    ``verify`` checks the recorder's every step against a pass over all VMAs."""
    options = options_for(scenario, base=base, smaps=False, trace=True)
    recorder = recorder_for(scenario, options.base, verify=verify)
    options.observe, options.snapshots = observer(recorder), "none"
    start = heap_start((options.base, ARENA_SIZE))
    backend = ModelBackend(profile or scenario.profile,
                           config={} if start is None else {"start_brk": start})
    run = execute(scenario, backend, options)
    return recorder.film, run
