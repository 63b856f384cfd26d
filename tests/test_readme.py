"""The README's code runs: every ```python block, in order, in one namespace (later blocks use
names from earlier ones), and every ``vmamodel`` command of its ```sh blocks."""

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
