"""Shrinking a failing sequence to the fewest calls that still show the same difference.

Delta debugging (Zeller's ddmin) over the list of steps: try dropping chunks of the sequence,
halving the chunk size whenever no chunk can go, down to single steps; every attempt replays
the candidate on a fresh model and a fresh oracle child. A candidate counts when it shows a
difference of the same signature (the call and the kind of difference). A candidate that
cannot run (a call on a process whose fork was dropped, an mremap the oracle refuses once
the state changed) does not count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vmamodel.fuzz.generate import Step
from vmamodel.fuzz.lockstep import Divergence, InvalidStep, run_steps

Replay = Callable[[Sequence[Step]], Divergence | None]


@dataclass
class Shrunk:
    steps: list[Step]
    divergence: Divergence
    attempts: int


def replay_divergence(steps: Sequence[Step]) -> Divergence | None:
    """The divergence of a candidate on fresh model + host, None when it passes or cannot
    run."""
    try:
        return run_steps(steps)[1]
    except InvalidStep:
        return None


def shrink(steps: Sequence[Step], divergence: Divergence,
           replay: Replay = replay_divergence, budget: int = 2000) -> Shrunk:
    """The smallest sub-sequence found (1-minimal when ``budget`` replays suffice) that
    still diverges like ``divergence``; the steps after the divergence are dropped first."""
    wanted = divergence.signature
    attempts = 0
    best = list(steps[: divergence.index + 1])
    found = divergence

    def fails(candidate: list[Step]) -> bool:
        nonlocal attempts, found
        attempts += 1
        got = replay(candidate)
        if got is None or got.signature != wanted:
            return False
        found = got
        return True

    chunks = 2
    while len(best) >= 2 and attempts < budget:
        size = max(1, len(best) // chunks)
        reduced = False
        start = 0
        while start < len(best) and attempts < budget:
            candidate = best[:start] + best[start + size:]
            if candidate and fails(candidate):
                best = _upto(candidate, found)
                reduced = True
                continue  # the same start now holds the next chunk
            start += size
        if reduced:
            chunks = max(chunks - 1, 2)
        elif size == 1:
            break
        else:
            chunks = min(chunks * 2, len(best))
    return Shrunk(best, found, attempts)


def _upto(steps: list[Step], divergence: Divergence) -> list[Step]:
    """A candidate may diverge before its last step: what follows can go."""
    return steps[: divergence.index + 1]
