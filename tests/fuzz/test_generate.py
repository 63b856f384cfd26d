"""vmamodel.fuzz.generate: seeded, weighted toward VMA-changing calls, always valid scenario
calls; and their rendering as a scenario that the parser accepts."""

from __future__ import annotations

from collections import Counter

import vmamodel as v
from vmamodel.fuzz.generate import Step
from vmamodel.fuzz.lockstep import run_sequence
from vmamodel.fuzz.render import call_text, scenario_text
from vmamodel.host.arena import ARENA_BASE
from vmamodel.scenario import parse
from vmamodel.scenario.ast import CALLS


def _steps(seed: int, length: int) -> list[Step]:
    return run_sequence(seed, length, host=False).steps


def test_a_seed_always_gives_the_same_sequence() -> None:
    assert _steps(7, 80) == _steps(7, 80)
    assert _steps(7, 80) != _steps(8, 80)


def test_sequences_favour_calls_that_change_vmas() -> None:
    funcs: Counter[str] = Counter()
    fixed_over_vmas = partial_mprotect = 0
    for seed in range(12):
        for step in _steps(seed, 120):
            funcs[step.func] += 1
            if step.func == "mmap" and isinstance(step.args[3], int):
                fixed_over_vmas += bool(step.args[3] & v.MAP_FIXED)
            if step.func == "mprotect" and isinstance(step.args[1], int):
                partial_mprotect += step.args[1] <= 4 * v.PAGE_SIZE
    total = sum(funcs.values())
    changing = sum(funcs[f] for f in ("mmap", "mprotect", "mremap", "madvise", "munmap"))
    assert changing > total * 0.6
    for func in ("fork", "exit", "mlock", "brk", "touch", "mremap", "madvise"):
        assert funcs[func] > 0, func
    assert fixed_over_vmas > 50 and partial_mprotect > 50
    assert set(funcs) <= set(CALLS)


def test_steps_render_as_a_scenario_the_parser_accepts() -> None:
    steps = _steps(3, 150)
    text = scenario_text(steps, [None] * len(steps), ["seed 3"])
    scenario = parse(text, "seed3.vmas")
    assert len(scenario.calls) == len(steps) + sum(1 for line in text.splitlines()
                                                   if "memfd_create" in line)


def test_call_text_names_flags_and_addresses() -> None:
    step = Step("mmap", (ARENA_BASE + 0x3000, 0x2000, v.PROT_READ | v.PROT_WRITE,
                         v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED, None, 0), "c1")
    assert call_text(step) == ("c1.mmap(BASE + 0x3000, 0x2000, PROT_READ|PROT_WRITE, "
                               "MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0)")
    assert call_text(Step("madvise", (ARENA_BASE, 0x1000, v.MADV_DONTFORK))) == \
        "madvise(BASE, 0x1000, MADV_DONTFORK)"


def test_a_generator_forks_and_exits_only_processes_it_made() -> None:
    alive = {"main"}
    for step in _steps(11, 300):
        assert step.space in alive
        if step.func == "fork":
            assert step.bind is not None
            alive.add(step.bind)
        if step.func == "exit":
            alive.remove(step.space)
    assert len(alive) <= 4

