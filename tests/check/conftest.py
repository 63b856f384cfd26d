"""Fixtures of the checker's tests: ``check all`` runs once per test session."""

from __future__ import annotations

import pytest

from vmamodel.check import Report, run_check


@pytest.fixture(scope="session")
def all_report() -> Report:
    return run_check("all", jobs=2)
