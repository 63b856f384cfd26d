"""Hypothesis rules for prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME), mixed into a
DifferentialMachine: names (valid, empty, too long, with a forbidden character, NULL) over
ranges that start near an existing VMA and cross VMAs and holes, sometimes unaligned. Without
CONFIG_ANON_VMA_NAME on the host every call is EINVAL on both sides; with it, maps compares
the ``[anon:NAME]`` and ``[anon_shmem:NAME]`` names and how named VMAs split and merge."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from vmamodel.fuzz import generate as gen

from .machine import P, at
from .rules_madvise import LENGTHS, TARGETS

#: Few names, so that equal names meet and merge; and the refused ones.
NAMES = st.sampled_from(gen.ANON_NAMES)


class AnonNameRules:
    """Rules only: the machine class that mixes this in provides ``both`` and ``model``."""

    @rule(
        near=TARGETS,
        npages=LENGTHS,
        name=NAMES,
        skew=st.sampled_from(gen.ANON_NAME_SKEWS),
    )
    def set_vma_anon_name(
        self, near: tuple[int, int], npages: int, name: str | None, skew: int
    ) -> None:
        page = gen.target_page(self.model, *near)  # type: ignore[attr-defined]
        self.both("set_vma_anon_name", at(page) + skew, npages * P, name)  # type: ignore[attr-defined]
