"""The README's code runs: every ```python block, in order, in one namespace (later blocks use
names from earlier ones), and every ``vmamodel`` command of its ```sh blocks; CI (.ci/run)
runs exactly the README's two commands at the top."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from vmamodel.cli.main import cli

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.S | re.M)


def commands() -> list[str]:
    """The ``vmamodel ...`` commands of the sh blocks (pip and pytest lines are set-up)."""
    found = []
    for block in blocks("sh"):
        for line in block.splitlines():
            found += [part.strip() for part in line.split("&&")
                      if part.strip().startswith("vmamodel ")]
    return found


def test_the_readme_has_code():
    assert len(blocks("python")) >= 8
    assert "vmamodel run --trace examples/driver_refcount.vmas" in commands()


def test_ci_runs_exactly_the_two_commands_at_the_top():
    """After installing Debian packages and making its venv, .ci/run's commands are the
    README's first sh block, line for line: both builds' suites, nothing else."""
    top = blocks("sh")[0].splitlines()
    assert len(top) == 2 and top[1].endswith("pytest -n 2 && PYTHONPATH=src pytest -n 2")
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    venv = script.index(". .venv/bin/activate")
    commands = [line for line in script[venv + 1:]
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands == ["python -m pip install --quiet --upgrade pip", *top]


def test_python_blocks_run_in_order(capsys):
    namespace: dict[str, object] = {}
    for number, code in enumerate(blocks("python")):
        exec(compile(code, f"README.md python block {number}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "['mmap_prepare', 'mapped', 'mmap_prepare', 'open', 'open', 'close', 'close', " \
        "'close']" in out


@pytest.mark.host
@pytest.mark.parametrize("command", commands())
def test_sh_commands_pass(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
