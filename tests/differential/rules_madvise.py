"""Hypothesis rules for madvise(2), mixed into a DifferentialMachine: every advice (and a few
invalid ones) over ranges that start near an existing VMA, cross VMAs and holes, and
sometimes have an unaligned start or length."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from vmamodel.fuzz import generate as gen

ADVICES = st.sampled_from(gen.ADVICES)
#: (which VMA, pages from its start): ranges mostly begin inside or just before a VMA.
TARGETS = st.tuples(st.integers(*gen.TARGET_VMAS), st.integers(*gen.TARGET_OFFSETS))
LENGTHS = st.one_of(*(st.integers(*bounds) for bounds in gen.NEAR_LENGTHS))


class MadviseRules:
    """Rules only: the machine class that mixes this in provides ``both`` and ``model``."""

    @rule(
        near=TARGETS,
        npages=LENGTHS,
        advice=ADVICES,
        skew=st.sampled_from(gen.MADVISE_SKEWS),
    )
    def madvise(self, near: tuple[int, int], npages: int, advice: int, skew: int) -> None:
        args = gen.madvise_args(self.model, near, npages, advice, skew)  # type: ignore[attr-defined]
        self.both("madvise", *args)  # type: ignore[attr-defined]
