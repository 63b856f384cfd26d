"""Hypothesis rules for fork and exit, mixed into a DifferentialMachine.

The machine keeps a family of processes, each a (model, host) pair: ``fork`` copies the
current one on both backends, ``switch`` makes another member current (every other rule acts
on the current pair through ``self.model`` / ``self.host``), and ``exit_member`` ends one that
is not the root. After a fork both sides of the family are compared, so a difference in what
the child got, or in what the fork did to the parent, shows at once; later rules in the
child exercise its anon_vmas (fork children refuse some merges: is_mergeable_anon_vma() in
mm/vma.c).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from vmamodel.fuzz.generate import MAX_FAMILY


class ForkRules:
    """Rules only: the machine class that mixes this in provides ``both``, ``check_state``,
    ``log``, ``model`` and ``host``."""

    model: Any
    host: Any
    log: list[str]

    def family(self) -> list[tuple[Any, Any]]:
        members: list[tuple[Any, Any]] | None = getattr(self, "_family", None)
        if members is None:
            members = self._family = [(self.model, self.host)]
        return members

    def compare_member(self, index: int) -> None:
        """check_state() on another member of the family, then back to the current one."""
        current = (self.model, self.host)
        self.model, self.host = self.family()[index]
        try:
            self.check_state()  # type: ignore[attr-defined]
        finally:
            self.model, self.host = current

    @precondition(lambda self: len(self.family()) < MAX_FAMILY)
    @rule()
    def fork(self) -> None:
        members = self.family()
        parent = members.index((self.model, self.host))
        self.log.append(f"fork() of #{parent} -> #{len(members)}")
        type(self).calls += 1  # type: ignore[attr-defined]
        members.append((self.model.fork(), self.host.fork()))
        self.check_state()  # type: ignore[attr-defined]
        self.compare_member(len(members) - 1)

    @rule(which=st.integers(0, MAX_FAMILY - 1))
    def switch(self, which: int) -> None:
        members = self.family()
        self.model, self.host = members[which % len(members)]
        self.log.append(f"switch to #{which % len(members)}")

    @precondition(lambda self: len(self.family()) > 1)
    @rule(which=st.integers(1, MAX_FAMILY - 1))
    def exit_member(self, which: int) -> None:
        members = self.family()
        index = 1 + (which - 1) % (len(members) - 1)
        model, host = members.pop(index)
        self.log.append(f"exit() of #{index}")
        type(self).calls += 1  # type: ignore[attr-defined]
        model.exit()
        host.exit()
        assert model.maps() == "" and model.map_count == 0
        if (self.model, self.host) == (model, host):
            self.model, self.host = members[0]
        self.check_state()  # type: ignore[attr-defined]

    def teardown(self) -> None:
        for _, host in self.family()[1:]:
            host.exit()
        super().teardown()  # type: ignore[misc]
