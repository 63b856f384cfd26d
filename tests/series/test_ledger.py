"""The driver resource ledger (vmamodel.drivers.ledger)."""

from __future__ import annotations

import pytest

from vmamodel.drivers.ledger import Ledger, LedgerError


def test_balanced_after_matching_acquire_and_release():
    ledger = Ledger("t")
    ledger.acquire("ref", "mapped", 1)
    ledger.acquire("ref", "open", 2)
    ledger.release("ref", "close", 2)
    ledger.release("ref", "close", 1)
    assert ledger.balance() == {"ref": 0}
    assert ledger.leaks() == {} and ledger.double_releases() == []
    ledger.assert_balanced()


def test_leak_is_reported_with_its_cause():
    ledger = Ledger("t")
    ledger.acquire("ref", "mmap_prepare")
    assert ledger.leaks() == {"ref": 1}
    with pytest.raises(LedgerError, match="mmap_prepare"):
        ledger.assert_balanced()


def test_release_with_nothing_held_is_an_underflow():
    ledger = Ledger("t")
    ledger.release("pm", "close", 7)
    assert ledger.balance() == {"pm": -1}
    [entry] = ledger.double_releases()
    assert (entry.cause, entry.vma_id, entry.count) == ("close", 7, -1)
    assert not ledger.is_balanced()


def test_strict_ledger_raises_on_underflow():
    ledger = Ledger("t", strict=True)
    with pytest.raises(LedgerError):
        ledger.release("pm", "close")


def test_underflow_stays_reported_after_the_count_recovers():
    ledger = Ledger("t")
    ledger.release("pm", "close")
    ledger.acquire("pm", "mapped")
    assert ledger.balance() == {"pm": 0}
    assert not ledger.is_balanced()


def test_flags_make_the_ledger_unbalanced():
    ledger = Ledger("t")
    ledger.flag("NULL dereference", "close", 3)
    assert [f.message for f in ledger.flags()] == ["NULL dereference"]
    with pytest.raises(LedgerError, match="NULL dereference"):
        ledger.assert_balanced()


def test_causes_and_history_and_delta():
    ledger = Ledger("t")
    ledger.acquire("a", "mapped")
    before = ledger.snapshot()
    ledger.acquire("a", "open")
    ledger.acquire("b", "open")
    assert ledger.causes("acquire") == {"mapped": 1, "open": 2}
    assert ledger.causes("acquire", "a") == {"mapped": 1, "open": 1}
    assert [e.op for e in ledger.history("a")] == ["acquire", "acquire"]
    assert ledger.delta(before) == {"a": 1, "b": 1}
    assert [e.seq for e in ledger.history()] == [0, 1, 2]
