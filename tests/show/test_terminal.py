"""The terminal view on captured output: width 80 and 200, colour and NO_COLOR, and a pipe."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from vmamodel.cli.main import cli
from vmamodel.scenario import parse_file
from vmamodel.show import film_of_scenario, print_film

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples/merge_and_split.vmas"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|4[0-9]|9[0-7]|10[0-7])[;m]")


def render(width: int, *, colour: bool) -> str:
    film, _run = film_of_scenario(parse_file(str(EXAMPLE)))
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=colour, color_system="truecolor",
                      highlight=False)
    print_film(console, film)
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 200])
def test_every_line_fits_the_width(width: int) -> None:
    text = ANSI.sub("", render(width, colour=True))
    assert max(len(line) for line in text.splitlines()) <= width
    assert "[/rw-p 4K][/r--p 4K][/rw-p 4K]" in text  # the split, marked in plain characters
    assert "kept apart by vm_flags (2 pairs)" in text
    assert "[/rw-p 4K] ·4K· [/rw-p 4K]" in text  # the unmapped page, its size written in
    assert "- removed  100000001000-100000002000 r--p" in text
    assert "⋈ existing_range [0x100000001000, 0x100000002000): merged into #2" in text


def test_a_narrow_terminal_folds_the_call_but_not_the_band() -> None:
    text = ANSI.sub("", render(40, colour=False))
    assert all(len(line) <= 40 for line in text.splitlines())
    assert "    [=rw-p 12K]" in text


def test_colour_and_no_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    coloured = render(200, colour=True)
    assert COLOUR.search(coloured)
    monkeypatch.setenv("NO_COLOR", "1")
    plain = render(200, colour=True)
    assert not COLOUR.search(plain)
    assert ANSI.sub("", plain) == ANSI.sub("", coloured)


def test_a_pipe_gets_plain_text_at_100_columns() -> None:
    env = {k: val for k, val in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    vmamodel = str(Path(sys.executable).with_name("vmamodel"))
    result = subprocess.run([vmamodel, "show", str(EXAMPLE)],
                            capture_output=True, text=True, env=env, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    assert "[=rw-p 12K]" in result.stdout


def test_run_show_draws_the_steps_and_keeps_the_summary() -> None:
    result = CliRunner().invoke(cli, ["run", "--show", "--width", "120", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "[/rw-p 4K][/r--p 4K][/rw-p 4K]" in result.output
    assert "10 calls, 0 failed expectations" in result.output
    assert "· MergeAttempt" not in result.output
    traced = CliRunner().invoke(cli, ["run", "--show", "--trace", str(EXAMPLE)])
    assert "    · MergeAttempt op=new_range start=0x100000001000" in traced.output


def test_show_reports_a_bad_scenario_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.vmas"
    bad.write_text("mmap(BASE, 4K, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED)\nfrob(1)\n")
    result = CliRunner().invoke(cli, ["show", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2" in result.output and "Traceback" not in result.output


def test_show_html_to_an_unwritable_place(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["show", str(EXAMPLE), "--html",
                                      str(tmp_path / "no" / "such" / "dir.html")])
    assert result.exit_code == 2
    assert "--html" in result.output and "Traceback" not in result.output


def test_a_failed_expectation_is_shown_and_exits_1(tmp_path: Path) -> None:
    scenario = tmp_path / "fail.vmas"
    scenario.write_text("mmap(BASE, 4K, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED) = 0\n")
    result = CliRunner().invoke(cli, ["show", str(scenario)])
    assert result.exit_code == 1
    assert "✗ expected 0x0, got 0x100000000000" in result.output
