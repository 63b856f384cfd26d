"""``vmamodel fuzz`` on the local backend against the host kernel: a short campaign, its
directory, resuming, idempotent re-runs and the refusal to mix kernels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vmamodel.cli.main import cli
from vmamodel.fuzz.shard import host_traits, kernel_release
from vmamodel.fuzz.store import Campaign

pytestmark = pytest.mark.host

SHORT = ["--length", "25", "--shard-size", "3"]


def fuzz(directory: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["fuzz", str(directory), *SHORT, *args])


def shard_lines(directory: Path) -> dict[str, list[str]]:
    return {p.name: p.read_text().splitlines() for p in sorted(directory.glob("shards/*"))}


def test_a_short_campaign_records_every_seed(tmp_path: Path) -> None:
    result = fuzz(tmp_path, "--seeds", "0:5", "-j", "2")
    assert result.exit_code == 0, result.output
    assert "this run: 5 sequences, 125 calls" in result.output
    assert "0 differences" in result.output
    meta = json.loads((tmp_path / "campaign.json").read_text())
    assert meta["kernel"] == kernel_release() and meta["kernels"] == [kernel_release()]
    assert meta["traits"] == host_traits() and meta["length"] == 25
    lines = shard_lines(tmp_path)
    assert list(lines) == ["seeds-000000000-000000002.jsonl", "seeds-000000003-000000005.jsonl"]
    records = [json.loads(line) for shard in lines.values() for line in shard]
    assert sorted(r["seed"] for r in records) == [0, 1, 2, 3, 4]
    for record in records:
        assert record["status"] == "ok" and record["calls"] == 25
        assert record["kernel"] == kernel_release() and record["traits"] == host_traits()


def test_a_rerun_adds_nothing_and_a_larger_one_resumes(tmp_path: Path) -> None:
    assert fuzz(tmp_path, "--seeds", "0:4").exit_code == 0
    before = shard_lines(tmp_path)
    again = fuzz(tmp_path, "--seeds", "0:4")
    assert again.exit_code == 0 and "this run: 0 sequences" in again.output
    assert shard_lines(tmp_path) == before
    more = fuzz(tmp_path, "--calls", "150")  # seeds 0..5: only 4 and 5 are new
    assert "this run: 2 sequences, 50 calls" in more.output, more.output
    after = shard_lines(tmp_path)
    assert after["seeds-000000000-000000002.jsonl"] == before["seeds-000000000-000000002.jsonl"]
    assert after["seeds-000000003-000000005.jsonl"][:1] == before["seeds-000000003-000000005.jsonl"]
    assert "campaign " in more.output and "6 sequences, 150 calls" in more.output


def test_a_line_cut_by_an_interruption_is_run_again(tmp_path: Path) -> None:
    assert fuzz(tmp_path, "--seeds", "0:3").exit_code == 0
    shard = tmp_path / "shards" / "seeds-000000000-000000002.jsonl"
    lines = shard.read_text().splitlines()
    shard.write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])  # killed mid-write
    result = fuzz(tmp_path, "--seeds", "0:3")
    assert "this run: 1 sequences" in result.output
    records = list(Campaign._records(shard))
    assert sorted(r["seed"] for r in records) == [0, 1, 2]


def test_another_kernel_is_refused_unless_allowed(tmp_path: Path) -> None:
    assert fuzz(tmp_path, "--seeds", "0:1").exit_code == 0
    meta_path = tmp_path / "campaign.json"
    meta = json.loads(meta_path.read_text())
    meta["kernel"], meta["kernels"] = "5.10.0-other", ["5.10.0-other"]
    meta_path.write_text(json.dumps(meta))
    refused = fuzz(tmp_path, "--seeds", "1:2")
    assert refused.exit_code == 2
    assert "mix kernels (pass --allow-mixed-kernels)" in refused.output
    allowed = fuzz(tmp_path, "--seeds", "1:2", "--allow-mixed-kernels")
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(meta_path.read_text())["kernels"] == ["5.10.0-other", kernel_release()]


def test_a_campaign_keeps_its_sequence_length(tmp_path: Path) -> None:
    assert fuzz(tmp_path, "--seeds", "0:1").exit_code == 0
    result = CliRunner().invoke(cli, ["fuzz", str(tmp_path), "--length", "30", "--seeds", "0:1"])
    assert result.exit_code == 2
    assert "made with length 25, not 30" in result.output


def test_bad_options_name_the_option(tmp_path: Path) -> None:
    result = fuzz(tmp_path, "--time", "ten minutes")
    assert result.exit_code == 2 and "--time" in result.output
    result = fuzz(tmp_path, "--seeds", "5:2")
    assert result.exit_code == 2 and "--seeds" in result.output


def test_the_model_alone_runs_the_same_sequences(tmp_path: Path) -> None:
    assert fuzz(tmp_path / "both", "--seeds", "0:2").exit_code == 0
    alone = fuzz(tmp_path / "alone", "--seeds", "0:2", "--no-kernel")
    assert alone.exit_code == 0, alone.output
    assert "this run: 2 sequences, 50 calls" in alone.output
    records = [json.loads(line) for path in (tmp_path / "alone").glob("shards/*")
               for line in path.read_text().splitlines()]
    assert {r["traits"] == {} and r["status"] == "ok" for r in records} == {True}
