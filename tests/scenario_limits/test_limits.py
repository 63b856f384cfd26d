"""Bad scenario files give ``file:line: message`` and exit status 2, never a traceback; integer
expressions stay within what a 64-bit register holds; ``vmamodel run`` renders only the
states it shows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from vmamodel.cli.main import cli
from vmamodel.scenario import ModelBackend, ScenarioError, execute, options_for, parse, parse_file

MAP = "mmap(BASE, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED)"


def _run(tmp_path: Path, text: str | bytes) -> tuple[int, str]:
    path = tmp_path / "s.vmas"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


BAD = [
    ("a huge literal", f"{MAP}\nmunmap(BASE, {'9' * 5000})\n", 2, "does not fit in 64 bits"),
    ("a literal past 2**64", "munmap(BASE, 0x10000000000000000)\n", 1, "does not fit"),
    ("a literal with a suffix past 2**64", "munmap(BASE, 0xffffffffffffffffK)\n", 1,
     "does not fit"),
    ("a giant shift", "munmap(BASE, 1 << 10000000000)\n", 1, "shift count"),
    ("a shift by 64", "munmap(BASE, 1 << 64)\n", 1, "shift count"),
    ("a negative shift", "munmap(BASE, 1 >> -1)\n", 1, "shift count"),
    ("a product past 2**64", "munmap(BASE, 0xffffffffff * 0xffffffffffff)\n", 1, "64 bits"),
    ("a sum past 2**64", "munmap(BASE, 0xffffffffffffffff + 1)\n", 1, "64 bits"),
    ("deep parentheses", "munmap(BASE, " + "(" * 100 + "1" + ")" * 100 + ")\n", 1, "nested"),
    ("deep unary minus", "munmap(BASE, " + "-" * 100 + "1)\n", 1, "nested"),
    ("a long chain", "munmap(BASE, " + "+".join(["1"] * 5000) + ")\n", 1, "tokens"),
]


@pytest.mark.parametrize(("text", "line", "message"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_input_is_file_line_message_and_exit_2(tmp_path, text, line, message):
    start = time.perf_counter()
    code, output = _run(tmp_path, text)
    assert time.perf_counter() - start < 10
    assert code == 2
    assert f"s.vmas:{line}: " in output and message in output
    assert "Traceback" not in output


def test_a_file_that_is_not_utf8(tmp_path):
    code, output = _run(tmp_path, b"munmap(BASE, 4K)\n# caf\xe9\n")
    assert code == 2 and "s.vmas:2: not UTF-8" in output


def test_a_binary_file(tmp_path):
    code, output = _run(tmp_path, bytes(range(256)) * 4)
    assert code == 2 and "s.vmas:2: not UTF-8" in output  # byte 0x80 follows the first newline


def test_values_a_register_holds_are_fine():
    scenario = parse("munmap(BASE, 0xffffffffffffffff) = -EINVAL\n"
                     "munmap(BASE, -0x8000000000000000) = -EINVAL\n"
                     "munmap(BASE, ~0) = -EINVAL\n", "ok.vmas")
    run = execute(scenario, ModelBackend(None), options_for(scenario))
    assert run.error is None and not run.failed_expectations


def test_bounds_hold_in_expectations_too():
    scenario = parse(f"{MAP} = 0xffffffffffffffff * 2\n", "e.vmas")
    run = execute(scenario, ModelBackend(None), options_for(scenario))
    assert isinstance(run.error, ScenarioError) and run.error.line == 1


def test_parse_file_names_an_unreadable_file(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        parse_file(tmp_path)


def _scenario(tmp_path: Path, markers: bool) -> str:
    lines = [MAP, "mprotect(BASE, 4K, PROT_READ) = 0"]
    if markers:
        lines.append("maps")
    lines.append("munmap(BASE, 4K) = 0")
    path = tmp_path / "m.vmas"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_shown_snapshots_only_at_markers(tmp_path):
    scenario = parse_file(_scenario(tmp_path, markers=True))
    options = options_for(scenario, smaps=False, snapshots="shown")
    run = execute(scenario, ModelBackend(None), options)
    assert [bool(step.snapshots) for step in run.steps] == [False, False, True, False]
    assert run.steps[2].snapshots[0].smaps is None
    # every step keeps them for diff, the default
    full = execute(scenario, ModelBackend(None), options_for(scenario))
    assert all(step.snapshots for step in full.steps)
    assert full.steps[2].snapshots[0].maps == run.steps[2].snapshots[0].maps


def test_shown_snapshots_after_every_call_without_markers(tmp_path):
    scenario = parse_file(_scenario(tmp_path, markers=False))
    run = execute(scenario, ModelBackend(None), options_for(scenario, snapshots="shown"))
    assert all(step.snapshots for step in run.steps)


def test_an_unchanged_state_is_kept_once(tmp_path):
    scenario = parse(f"{MAP}\nmprotect(BASE, 4K, PROT_READ|PROT_WRITE) = 0\n", "same.vmas")
    run = execute(scenario, ModelBackend(None), options_for(scenario))
    first, second = (step.snapshots[0] for step in run.steps)
    assert first.maps is second.maps and first.smaps is second.smaps


def test_progress_callback_counts_every_statement(tmp_path):
    scenario = parse_file(_scenario(tmp_path, markers=True))
    seen: list[tuple[int, int]] = []
    options = options_for(scenario, on_step=lambda done, total: seen.append((done, total)))
    execute(scenario, ModelBackend(None), options)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
