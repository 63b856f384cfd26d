"""``vmamodel check`` on the command line: exit status, table, JSON, SARIF, reproducers."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from vmamodel.cli.main import cli


def invoke(*args: str) -> tuple[int, str]:
    """Exit status and output; with ``--json -`` the output is stdout alone (the table then
    goes to stderr)."""
    result = CliRunner().invoke(cli, ["check", *args])
    return result.exit_code, result.stdout if "-" in args else result.output


def test_a_clean_driver_exits_0() -> None:
    code, out = invoke("/dev/hpet", "-j", "1")
    assert code == 0, out
    assert "0 driver finding(s), 0 other(s)" in out
    assert "/dev/hpet [6.18]: not explored" in out  # it needs mmap actions


def test_kernel_findings_alone_exit_0() -> None:
    code, out = invoke("/dev/good0", "--profile", "v4", "-j", "1")
    assert code == 0, out
    assert "check-hook" in out and "kernel" in out
    assert "0 driver finding(s)" in out


def test_driver_findings_exit_1_with_table_and_reproducer() -> None:
    code, out = invoke("/dev/bad0", "--profile", "mainline", "-j", "1")
    assert code == 1, out
    for word in ("origin", "kind", "hook", "rule", "merge", "fail:vma_alloc", "mmap_prepare"):
        assert word in out
    assert "vma_merge_new_range()" in out
    assert 'fd = open("/dev/bad0")' in out
    assert "4 driver finding(s)" in out


def test_usage_errors_exit_2() -> None:
    assert invoke("/dev/nothing")[0] == 2
    assert invoke("nomodule_xyz:factory")[0] == 2
    assert invoke("not a target")[0] == 2
    assert invoke("/dev/bad0", "--profile", "7.0")[0] == 2
    assert invoke("/dev/bad0", "-j", "0")[0] == 2


def test_json_and_sarif(tmp_path: Path) -> None:
    sarif = tmp_path / "out.sarif"
    code, out = invoke("/dev/stm0", "--profile", "v4", "-j", "1", "--json", "-",
                       "--sarif", str(sarif))
    assert code == 1
    data = json.loads(out)
    kinds = {(f["origin"], f["kind"], f["rule"]) for f in data["findings"]}
    assert ("driver", "close-without-mapped", "fail:action_complete") in kinds
    assert data["runs"] > 100
    log = json.loads(sarif.read_text())
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "vmamodel check"
    rule_ids = {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    assert {result["ruleId"] for result in run["results"]} <= rule_ids
    errors = [r for r in run["results"] if r["level"] == "error"]
    assert len(errors) == 1
    location = errors[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("drivers/stm.py")


def test_out_writes_reproducers_that_replay(tmp_path: Path) -> None:
    code, _ = invoke("/dev/bad0", "--profile", "v4", "-j", "1", "--out", str(tmp_path))
    assert code == 1
    files = sorted(tmp_path.glob("*.vmas"))
    assert len(files) == 4
    for path in files:
        result = CliRunner().invoke(cli, ["run", str(path)])
        assert result.exit_code == 1 and "finding [driver] leak in mmap_prepare" in result.output


def test_budget_adds_random_sequences_deterministically() -> None:
    first = invoke("/dev/bad0", "--profile", "v4", "-j", "1", "--budget", "5", "--seed", "3",
                   "--json", "-")
    again = invoke("/dev/bad0", "--profile", "v4", "-j", "1", "--budget", "5", "--seed", "3",
                   "--json", "-")
    plain = invoke("/dev/bad0", "--profile", "v4", "-j", "1", "--json", "-")
    runs = [json.loads(out)["runs"] for _, out in (first, again, plain)]
    assert runs[0] == runs[1] > runs[2]
    strip = [[{k: v for k, v in f.items() if k != "count"} for f in json.loads(out)["findings"]]
             for _, out in (first, again)]
    assert strip[0] == strip[1]


def test_parallel_and_serial_agree() -> None:
    serial = json.loads(invoke("/dev/bad0", "--profile", "v4", "-j", "1", "--json", "-")[1])
    parallel = json.loads(invoke("/dev/bad0", "--profile", "v4", "-j", "2", "--json", "-")[1])
    assert serial["findings"] == parallel["findings"]
