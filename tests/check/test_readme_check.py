"""The README's "Checking your driver" walk-through runs: its driver module is written to a
directory, each ``$ vmamodel ...`` command of its console blocks runs there, and every output
line the README shows ("..." skips lines) appears in what the command printed."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vmamodel.cli.main import cli

README = (Path(__file__).parent.parent.parent / "README.md").read_text()
SECTION = README.split("## Checking your driver", 1)[1].split("\n## ", 1)[0]


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", SECTION, re.S | re.M)


def _pattern(line: str) -> re.Pattern[str]:
    """A shown line, with any amount of space between words and any duration."""
    words = [re.escape(word) for word in line.split()]
    return re.compile(r"\s+".join(words).replace(r"0\.5\ s", r"[0-9.]+\ s")
                      .replace(r"0\.5\s+s", r"[0-9.]+\s+s"))


def _run(block: str, status: int) -> None:
    command, *shown = block.strip().splitlines()
    assert command.startswith("$ vmamodel ")
    result = CliRunner().invoke(cli, shlex.split(command[2:])[1:])
    assert result.exit_code == status, result.output
    output = " ".join(result.output.split())
    for line in shown:
        if line.strip() in ("", "..."):
            continue
        assert _pattern(line).search(output), f"not in the output: {line}"


def test_the_walk_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    driver, fix = blocks("python")
    first, replay, again = blocks("console")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "ring.py").write_text(driver)
    _run(first, 1)  # the driver's findings
    _run(replay, 1)  # the reproducer shows its finding
    (tmp_path / "ring.py").write_text(driver + "\n\n" + fix)
    sys.modules.pop("ring", None)
    _run(again, 0)  # fixed: nothing of the driver's own
    sys.modules.pop("ring", None)
