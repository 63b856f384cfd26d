"""The command line at its edges: option values, exit statuses (Ctrl-C 130, closed pipe 141,
quiet), the README's scenario sample, ``vmamodel help``, and a diff row both sides agree on."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from vmamodel.cli.main import _maps_rows, _result_rows, cli
from vmamodel.host.traits import host_kernel_kwargs, host_model_kwargs
from vmamodel.scenario import ModelBackend, execute, options_for, parse

ROOT = Path(__file__).parent.parent.parent
VMAMODEL = [sys.executable, "-c", "from vmamodel.cli.main import main; main()"]


@pytest.mark.parametrize("args", [
    ["run", "--width", "0", "examples/errno.vmas"],
    ["diff", "--width", "-3", "examples/errno.vmas"],
    ["bench", "--sizes", "0"],
    ["bench", "--sizes", "10,-1"],
    ["bench", "--sizes", "x"],
    ["bench", "--rounds", "-1"],
    ["bench", "--repeats", "0"],
    ["bench", "--memory-n", "-5"],
])
def test_nonsense_options_are_usage_errors(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "Invalid value" in result.output


def test_the_readme_scenario_sample_passes_as_written():
    [sample] = re.findall(r"^```vmas\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    scenario = parse(sample, "README.md")
    run = execute(scenario, ModelBackend(None), options_for(scenario))
    assert run.error is None and not run.failed_expectations and not run.crashed


def test_help_scenario_prints_the_grammar():
    result = CliRunner().invoke(cli, ["help", "scenario"])
    assert result.exit_code == 0 and "Grammar" in result.output and "marker" in result.output
    result = CliRunner().invoke(cli, ["help", "exit"])
    assert "130" in result.output and "141" in result.output
    assert "Exit status" in CliRunner().invoke(cli, ["--help"]).output


def _long_scenario(tmp_path: Path, lines: int) -> str:
    body = ["mmap(BASE, 4K, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED) = BASE",
            "munmap(BASE, 4K) = 0"] * (lines // 2)
    path = tmp_path / "long.vmas"
    path.write_text("\n".join(body) + "\n")
    return str(path)


def test_a_closed_pipe_exits_141_quietly(tmp_path):
    proc = subprocess.Popen([*VMAMODEL, "run", _long_scenario(tmp_path, 4000)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 141
    assert err == b""


def _cpu_seconds(pid: int) -> float:
    """User + system time of a process, from /proc/PID/stat (fields 14 and 15, in ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_ctrl_c_exits_130(tmp_path):
    proc = subprocess.Popen([*VMAMODEL, "run", _long_scenario(tmp_path, 200_000)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Interrupt once it is well past its imports (an interrupt during an import is Python's
    # own traceback): after 3 s of CPU time, however loaded the machine is.
    while proc.poll() is None and _cpu_seconds(proc.pid) < 3:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err


def test_host_model_kwargs_is_a_copy():
    first = host_model_kwargs()
    first["max_map_count"] = -1
    first.clear()
    assert host_model_kwargs()["max_map_count"] > 0
    kernel = host_kernel_kwargs()
    kernel["pkeys"] = "changed"
    assert host_kernel_kwargs()["pkeys"] != "changed"


def _plain(rows):
    return [(mark.plain, model.plain, host.plain) for mark, model, host in rows]


def test_a_row_both_sides_agree_on_is_not_marked():
    # A maps line that sits in a replaced block but is the same on both sides.
    rows = _plain(_maps_rows(["a", "b", "c"], ["x", "b", "y"]))
    assert all(mark == " " for mark, model, host in rows if model == host)
    assert any(mark == "≠" for mark, model, host in rows)


def test_the_same_failed_expectation_on_both_sides_is_not_a_difference():
    scenario = parse("munmap(BASE + 1, 4K) = 0\n", "same.vmas")
    run = execute(scenario, ModelBackend(None), options_for(scenario))
    [step] = run.steps
    assert step.failed_expectation is not None
    rows = _plain(_result_rows(step, step))
    assert [mark for mark, _, _ in rows] == [" ", " "]
