"""A bookkeeping ledger for driver resources: who took what, who gave it back, and why.

Driver models record every acquire/release of a named resource (a reference count, a PM
usage count, an allocated struct) together with the hook that caused it and the VMA it was
for. Tests then ask whether everything balances, what leaked, and which releases had nothing
to release (an underflow, a double free). Kernel bugs a driver would hit (a NULL dereference
in ``close``) are recorded as flags instead of crashing the model.

    ledger = Ledger("stm")
    ledger.acquire("pm", "mapped", vma_id=3)
    ledger.release("pm", "close", vma_id=3)
    ledger.assert_balanced()
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


class LedgerError(AssertionError):
    """A ledger did not balance, or a strict ledger saw a release with nothing held."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One acquire or release: ``cause`` is the hook or step ("mapped", "close", ...)."""

    seq: int
    op: str
    resource: str
    cause: str
    vma_id: int | None = None
    #: the count of ``resource`` after this entry
    count: int = 0

    def __str__(self) -> str:
        vma = f" vma#{self.vma_id}" if self.vma_id is not None else ""
        return f"#{self.seq} {self.op} {self.resource} by {self.cause}{vma} -> {self.count}"


@dataclass(frozen=True, slots=True)
class LedgerFlag:
    """A kernel bug the driver would hit at this point (the model keeps going)."""

    seq: int
    message: str
    cause: str
    vma_id: int | None = None


@dataclass(slots=True)
class Ledger:
    """Counts per named resource, with the full history.

    ``strict`` makes a release without a matching acquire raise :class:`LedgerError` at
    once; by default it is recorded (see :meth:`double_releases`) and the count goes
    negative, which is what a driver-visible counter underflow looks like.
    """

    name: str
    strict: bool = False
    _counts: Counter[str] = field(default_factory=Counter)
    _history: list[LedgerEntry] = field(default_factory=list)
    _flags: list[LedgerFlag] = field(default_factory=list)
    _underflows: list[LedgerEntry] = field(default_factory=list)

    def _next_seq(self) -> int:
        return len(self._history) + len(self._flags)

    def acquire(self, resource: str, cause: str, vma_id: int | None = None) -> int:
        """Take one unit of ``resource``; returns the new count."""
        self._counts[resource] += 1
        return self._record("acquire", resource, cause, vma_id)

    def release(self, resource: str, cause: str, vma_id: int | None = None) -> int:
        """Give one unit back; returns the new count. Nothing held: an underflow."""
        underflow = self._counts[resource] <= 0
        if underflow and self.strict:
            raise LedgerError(f"{self.name}: {cause} released {resource!r} with none held")
        self._counts[resource] -= 1
        count = self._record("release", resource, cause, vma_id)
        if underflow:
            self._underflows.append(self._history[-1])
        return count

    def _record(self, op: str, resource: str, cause: str, vma_id: int | None) -> int:
        count = self._counts[resource]
        self._history.append(LedgerEntry(self._next_seq(), op, resource, cause, vma_id, count))
        return count

    def flag(self, message: str, cause: str, vma_id: int | None = None) -> None:
        """Record a kernel bug the driver hits here (NULL dereference, use after free)."""
        self._flags.append(LedgerFlag(self._next_seq(), message, cause, vma_id))

    def count(self, resource: str) -> int:
        """The current net count of ``resource``."""
        return self._counts[resource]

    def balance(self) -> dict[str, int]:
        """Net count per resource ever touched (0 = balanced, >0 leaked, <0 over-released)."""
        return dict(self._counts)

    def leaks(self) -> dict[str, int]:
        """Resources still held."""
        return {name: n for name, n in self._counts.items() if n > 0}

    def double_releases(self) -> list[LedgerEntry]:
        """Releases that happened with nothing held."""
        return list(self._underflows)

    def flags(self) -> list[LedgerFlag]:
        """Kernel bugs the driver hit."""
        return list(self._flags)

    def history(self, resource: str | None = None) -> list[LedgerEntry]:
        """All entries, or only those of ``resource``."""
        if resource is None:
            return list(self._history)
        return [entry for entry in self._history if entry.resource == resource]

    def causes(self, op: str, resource: str | None = None) -> Counter[str]:
        """How many acquires (or releases) each hook did: e.g. {"mapped": 1, "open": 2}."""
        return Counter(
            entry.cause
            for entry in self._history
            if entry.op == op and (resource is None or entry.resource == resource)
        )

    def is_balanced(self) -> bool:
        return not any(self._counts.values()) and not self._underflows and not self._flags

    def report(self) -> str:
        """A readable account of every imbalance, with the entries that caused it."""
        lines = [f"ledger {self.name}:"]
        for name, n in sorted(self._counts.items()):
            if n:
                lines.append(f"  {name}: net {n:+d}")
                lines.extend(f"    {entry}" for entry in self.history(name))
        lines.extend(f"  underflow: {entry}" for entry in self._underflows)
        lines.extend(f"  bug: #{f.seq} {f.message} in {f.cause}" for f in self._flags)
        return "\n".join(lines)

    def assert_balanced(self) -> None:
        """Raise :class:`LedgerError` with the history if anything is held, over-released
        or flagged."""
        if not self.is_balanced():
            raise LedgerError(self.report())

    def snapshot(self) -> dict[str, int]:
        """The counts now, to compare with a later :meth:`delta`."""
        return dict(self._counts)

    def delta(self, before: dict[str, int]) -> dict[str, int]:
        """Non-zero count changes since ``before``."""
        names = set(before) | set(self._counts)
        changes = {name: self._counts[name] - before.get(name, 0) for name in names}
        return {name: d for name, d in changes.items() if d}
