"""Real programs, recorded here and replayed on the model: every call's result and the final
maps and VmFlags must agree with the kernel's, byte for byte (inodes renumbered)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from vmamodel.cli.main import cli
from vmamodel.replay.recording import load_recording
from vmamodel.replay.replay import ReplayResult, replay, smaps_to_maps

from .programs_util import node_binary, python_binary, record_into

PYTHON_IMPORTS = "import json, decimal, sqlite3, ctypes, hashlib, zlib, _socket, array"
NODE_SCRIPT = (
    "const a = []; for (let i = 0; i < 100000; i++) a.push({i, s: 'x' + i});"
    "let f = (n) => n < 2 ? n : f(n - 1) + f(n - 2); console.log(a.length, f(22));"
)

Command = Callable[[dict[str, Path], Path], list[str]]


def _python(_: dict[str, Path], tmp: Path) -> list[str]:
    return [python_binary(), "-c", PYTHON_IMPORTS]


def _node(_: dict[str, Path], tmp: Path) -> list[str]:
    script = tmp / "script.js"
    script.write_text(NODE_SCRIPT)
    node = node_binary()
    assert node is not None
    return [node, str(script)]


COMMANDS: dict[str, Command] = {
    "true": lambda _, tmp: ["/bin/true"],
    "python": _python,
    # subprocess: a vfork child (CLONE_VM) shares the mm until it execs, with its own fds
    "subprocess": lambda _, tmp: [
        python_binary(), "-c", "import subprocess; subprocess.run(['/bin/true'], check=True)",
    ],
    "churn": lambda b, tmp: [str(b["churn"])],
    "files": lambda b, tmp: [str(b["files"]), str(tmp / "data.bin")],
}
CASES = [(name, True) for name in COMMANDS] + [
    ("true", False), ("python", False), ("churn", False), ("files", False),
]
if node_binary() is not None:  # node is optional: its case exists only where it is installed
    COMMANDS["node"] = _node
    CASES += [("node", True), ("node", False)]

MIN_CALLS = {"true": 0, "python": 50, "subprocess": 20, "churn": 100, "files": 14,
             "node": 300}


def _check_exact(result: ReplayResult, recording: Path | None = None) -> None:
    """Exact, or a message that says why: every divergence with the model's events and maps
    around it, the reorderings of thread calls made before it, and where the recording is
    (pytest keeps its tmp_path) to replay it again with ``vmamodel replay``."""
    text = "\n".join(d.report() for d in result.divergences)
    if recording is not None:
        text += f"\nrecording kept at {recording}"
    text += (f"\n{result.reordered} call(s) reordered, {result.replayed} replayed, "
             f"{result.threads} task(s)")
    assert result.exact, text
    assert result.final_compared
    assert not result.approximations, result.approximations


@pytest.mark.parametrize(("name", "no_randomize"), CASES,
                         ids=[f"{n}-{'norandom' if r else 'random'}" for n, r in CASES])
def test_real_program_replays_exactly(
    name: str, no_randomize: bool, binaries: dict[str, Path], tmp_path: Path
) -> None:
    command = COMMANDS[name](binaries, tmp_path)
    out = record_into(tmp_path / "rec", command, no_randomize=no_randomize)
    rec = load_recording(out)
    assert rec.faults is not None, "perf recorded no page faults"
    result = replay(rec)
    print(f"recording: {out}")  # kept by pytest's tmp_path
    _check_exact(result, out)
    assert result.replayed >= MIN_CALLS[name]
    if name == "churn":
        assert result.threads == 5 and result.faults > 0
    if name == "files":
        assert result.forks == 1


@pytest.fixture(scope="module")
def churn_recording(binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_into(tmp_path_factory.mktemp("churn") / "rec", [str(binaries["churn"])])


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _shift_first_placed_mmap(rec: Path) -> int:
    """Rewrite the recorded result of the first placed mmap after the start snapshot one
    page higher; return that line's 0-based index."""
    lines = (rec / "trace.txt").read_text().splitlines(keepends=True)
    marker = next(i for i, line in enumerate(lines) if "start.smaps" in line)
    index = next(i for i in range(marker, len(lines))
                 if " mmap(NULL, " in lines[i] and ") = 0x" in lines[i])
    head, _, value = lines[index].rstrip("\n").rpartition(" = ")
    lines[index] = f"{head} = {int(value, 16) + 0x1000:#x}\n"
    (rec / "trace.txt").write_text("".join(lines))
    return index


def test_a_changed_result_is_a_divergence_with_events_and_maps(
    churn_recording: Path, tmp_path: Path
) -> None:
    rec = _copy(churn_recording, tmp_path / "rec")
    index = _shift_first_placed_mmap(rec)
    outcome = CliRunner().invoke(cli, ["replay", str(rec)])
    assert outcome.exit_code == 1, outcome.output
    assert f"DIVERGENCE result at line {index + 1}:" in outcome.output
    assert "model:    0x" in outcome.output and "recorded: 0x" in outcome.output
    assert "· Syscall name=mmap" in outcome.output
    assert "model maps around the address" in outcome.output


def test_a_failed_exact_check_says_why_and_where_the_recording_is(
    churn_recording: Path, tmp_path: Path
) -> None:
    rec = _copy(churn_recording, tmp_path / "rec")
    index = _shift_first_placed_mmap(rec)
    with pytest.raises(AssertionError) as failed:
        _check_exact(replay(load_recording(rec)), rec)
    message = str(failed.value)
    assert f"result at line {index + 1}:" in message
    assert "mismatching order(s) tried" in message and "call(s) reordered, " in message
    assert "· Syscall name=mmap" in message and "model maps around the address" in message
    assert f"recording kept at {rec}" in message


def test_changed_final_maps_and_vmflags_are_divergences(
    churn_recording: Path, tmp_path: Path
) -> None:
    rec = _copy(churn_recording, tmp_path / "rec")
    end = (rec / "end.smaps").read_text()
    (rec / "end.smaps").write_text(end.replace("VmFlags: rd wr mr", "VmFlags: rd wr mr lo", 1))
    result = replay(load_recording(rec))
    assert [d.kind for d in result.divergences] == ["final vmflags"]
    rec2 = _copy(churn_recording, tmp_path / "rec2")
    end_lines = end.splitlines(keepends=True)
    header = next(i for i, line in enumerate(end_lines) if "[heap]" in line)
    end_lines[header] = end_lines[header].replace("[heap]", "[hexp]")
    (rec2 / "end.smaps").write_text("".join(end_lines))
    result = replay(load_recording(rec2))
    assert [d.kind for d in result.divergences] == ["final maps"]
    assert "-" in result.divergences[0].detail and "[hexp]" in result.divergences[0].detail


def test_an_unsupported_call_is_named_with_its_line(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    out = record_into(tmp_path / "rec", [str(binaries["unsupported"])])
    outcome = CliRunner().invoke(cli, ["replay", str(out)])
    assert outcome.exit_code == 1
    line = next(i for i, text in enumerate((out / "trace.txt").read_text().splitlines(), 1)
                if " remap_file_pages(" in text)
    assert f"DIVERGENCE unsupported at line {line}: " in outcome.output
    assert "remap_file_pages: remap_file_pages is not in the model" in outcome.output


def test_without_faults_the_replay_says_it_is_approximate(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    out = record_into(tmp_path / "rec", [str(binaries["churn"])], faults=False)
    outcome = CliRunner().invoke(cli, ["replay", "--keep-going", str(out)])
    assert "approximate: page faults are not recorded" in outcome.output


def test_raw_log_with_snapshots(churn_recording: Path) -> None:
    text = (churn_recording / "trace.txt").read_text().splitlines()
    marker = next(i for i, line in enumerate(text, 1) if "start.smaps" in line)
    outcome = CliRunner().invoke(cli, [
        "replay", str(churn_recording / "trace.txt"),
        "--start-smaps", str(churn_recording / "start.smaps"),
        "--end-smaps", str(churn_recording / "end.smaps"),
        "--mountinfo", str(churn_recording / "mountinfo"),
        "--start-line", str(marker), "--keep-going",
    ])
    # no end marker and no faults: the calls still agree one by one
    assert "DIVERGENCE result" not in outcome.output, outcome.output
    assert "replayed" in outcome.output


def test_bad_inputs_exit_2_naming_the_place(tmp_path: Path) -> None:
    runner = CliRunner()
    outcome = runner.invoke(cli, ["replay", str(tmp_path)])
    assert outcome.exit_code == 2 and "meta.json" in outcome.output
    log = tmp_path / "bad.log"
    log.write_text("123 mmap(NULL, 4096 = 0\n")
    smaps = tmp_path / "s.smaps"
    smaps.write_text("")
    outcome = runner.invoke(cli, ["replay", str(log), "--start-smaps", str(smaps)])
    assert outcome.exit_code == 2 and f"{log}:1:" in outcome.output
    outcome = runner.invoke(cli, ["replay", str(log)])
    assert outcome.exit_code == 2 and "--start-smaps" in outcome.output


def test_record_without_strace_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    outcome = CliRunner().invoke(cli, ["record", "-o", str(tmp_path / "o"), "--", "/bin/true"])
    assert outcome.exit_code == 2
    assert "install the Debian package strace" in outcome.output


def test_raw_log_with_maps_only_snapshots(churn_recording: Path, tmp_path: Path) -> None:
    """A maps text (no VmFlags) seeds with inferred flags; the end is compared as maps."""
    maps = tmp_path / "start.maps"
    maps.write_text(smaps_to_maps((churn_recording / "start.smaps").read_text()))
    end = tmp_path / "end.maps"
    end.write_text(smaps_to_maps((churn_recording / "end.smaps").read_text()))
    text = (churn_recording / "trace.txt").read_text().splitlines()
    marker = next(i for i, line in enumerate(text, 1) if "start.smaps" in line)
    outcome = CliRunner().invoke(cli, [
        "replay", str(churn_recording / "trace.txt"), "--start-smaps", str(maps),
        "--end-smaps", str(end), "--start-line", str(marker), "--keep-going",
    ])
    assert "VmFlags not compared" in outcome.output
    assert "DIVERGENCE result" not in outcome.output, outcome.output


def test_a_recording_keeps_no_environment_and_only_its_mounts(churn_recording: Path) -> None:
    trace = (churn_recording / "trace.txt").read_text()
    assert "PATH=" not in trace and " vars */)" in trace.splitlines()[0]
    mounts = (churn_recording / "mountinfo").read_text().splitlines()
    assert 1 <= len(mounts) <= 4  # the filesystems of the mapped files, not the machine's


def test_the_shipped_example_recording_replays_exactly() -> None:
    rec = load_recording(Path(__file__).parents[2] / "examples" / "fragment.rec")
    result = replay(rec)
    _check_exact(result)
    assert result.replayed > 250 and result.faults > 0


def test_an_exec_ends_the_address_space_and_says_so(tmp_path: Path) -> None:
    out = record_into(tmp_path / "rec", [
        python_binary(), "-c", "import os; os.execv('/bin/true', ['true'])",
    ])
    outcome = CliRunner().invoke(cli, ["replay", str(out)])
    assert outcome.exit_code == 1
    assert "DIVERGENCE unsupported at line" in outcome.output
    assert "execve: the address space ends here" in outcome.output
