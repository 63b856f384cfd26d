"""Fixtures of the checker's tests: ``vmamodel check all`` runs once per test session."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from vmamodel.check import Finding, Report, run_check
from vmamodel.cli.main import cli

from . import planted


@dataclass
class CheckAll:
    """What ``vmamodel check all --json -`` said."""

    exit_code: int
    findings: list[Finding]
    skipped: list[tuple[str, str, str]]
    runs: int

    @property
    def driver_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.is_driver_bug]


def finding_from_json(data: dict[str, object]) -> Finding:
    fields = {k: v for k, v in data.items() if k != "sentence"}
    location = fields.get("location")
    fields["location"] = tuple(location) if isinstance(location, list) else None
    return Finding(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def all_report() -> CheckAll:
    result = CliRunner().invoke(cli, ["check", "all", "-j", "2", "--json", "-"])
    data = json.loads(result.stdout)
    return CheckAll(result.exit_code, [finding_from_json(f) for f in data["findings"]],
                    [tuple(s) for s in data["skipped"]], data["runs"])


@pytest.fixture(scope="session")
def planted_reports() -> dict[str, Report]:
    """The check of every planted-bug variant (and of the correct driver), once."""
    variants = {"correct": planted.open_correct, **planted.PLANTED}
    return {name: run_check(factory, jobs=1) for name, factory in variants.items()}
