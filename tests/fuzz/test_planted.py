"""A planted model bug (vmamodel.fuzz.planted, behind VMAMODEL_FUZZ_PLANTED_BUG) is found by a
short campaign, shrunk to a scenario of at most 5 calls, and ``vmamodel diff`` reproduces it:
exit 1 with the bug planted, exit 0 on the real model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from vmamodel.cli.main import cli
from vmamodel.fuzz import planted
from vmamodel.mm import AddressSpace
from vmamodel.scenario import parse_file
from vmamodel.syscalls import SyscallEntry

pytestmark = pytest.mark.host


@pytest.fixture
def planted_bug() -> Iterator[None]:
    """The bug in this process (for diff) and, through the environment, in the workers."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(planted.ENV, "readonly-merge")
        planted.install("readonly-merge")
        try:
            yield
        finally:
            planted.uninstall()


def test_the_planted_bug_is_found_shrunk_and_reproduced(tmp_path: Path,
                                                        planted_bug: None) -> None:
    campaign = tmp_path / "campaign"
    result = CliRunner().invoke(cli, ["fuzz", str(campaign), "--seeds", "0:2", "--length", "60",
                                      "-j", "2"])
    assert result.exit_code == 1, result.output
    records = [json.loads(line) for path in sorted(campaign.glob("shards/*"))
               for line in path.read_text().splitlines()]
    diffs = [r for r in records if r["status"] == "diff"]
    assert diffs, result.output
    for record in diffs:
        shrunk = record["shrunk"]
        assert shrunk["calls"] <= 5
        scenario = campaign / "failures" / f"seed-{record['seed']}.vmas"
        assert scenario.read_text() == shrunk["scenario"]
        assert len(parse_file(str(scenario)).calls) <= 5 + 2  # + the memfds it may create
        assert f"{scenario}" in result.output
        reproduced = CliRunner().invoke(cli, ["diff", str(scenario)])
        assert reproduced.exit_code == 1, reproduced.output
        assert "differences" in reproduced.output
    planted.uninstall()
    clean = CliRunner().invoke(cli, ["diff", str(campaign / "failures" /
                                                 f"seed-{diffs[0]['seed']}.vmas")])
    assert clean.exit_code == 0, clean.output


def test_an_unknown_planted_bug_is_refused() -> None:
    with pytest.raises(ValueError, match="no such planted bug"):
        planted.install("everything")


def test_uninstall_gives_address_space_back_its_inherited_entries() -> None:
    """After uninstall() AddressSpace takes mmap and mprotect from SyscallEntry again, as
    before install(): no copy left on the class (tests/core/test_syscall_entry.py checks that
    none stands in front of the native entries, whatever ran before it in the worker)."""
    planted.install("readonly-merge")
    planted.uninstall()
    assert "mmap" not in vars(AddressSpace) and "mprotect" not in vars(AddressSpace)
    assert AddressSpace.mmap is SyscallEntry.mmap
    assert AddressSpace.mprotect is SyscallEntry.mprotect
