"""Every finding's reproducer, replayed by ``vmamodel run``, shows the same finding."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vmamodel.check import Finding, Report
from vmamodel.cli.main import cli

from . import planted
from .conftest import CheckAll


def _replay(finding: Finding, tmp_path: Path) -> None:
    path = tmp_path / "repro.vmas"
    path.write_text(finding.reproducer)
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 1, result.output
    head = f"finding [{finding.origin}] {finding.kind} in {finding.hook}: {finding.sentence}"
    assert head in " ".join(result.output.split()), result.output


def test_check_all_reproducers_via_vmamodel_run(all_report: CheckAll, tmp_path: Path) -> None:
    assert all_report.findings
    for finding in all_report.findings:
        _replay(finding, tmp_path)


@pytest.mark.parametrize("name", sorted(planted.PLANTED))
def test_planted_reproducers_via_vmamodel_run(name: str, tmp_path: Path,
                                              planted_reports: dict[str, Report]) -> None:
    for finding in planted_reports[name].driver_findings:
        _replay(finding, tmp_path)
