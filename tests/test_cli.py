"""The command line: ``vmamodel run`` and ``vmamodel diff`` through click's CliRunner.

The model and the host are replaced by the fake backend of test_scenario.py, so that these
tests judge the command line alone.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from test_scenario import FakeBackend, FakeSpace
from vmamodel.cli import main as cli_main
from vmamodel.cli.main import cli, format_event
from vmamodel.events import MergeAttempt, Syscall, Tracer, VmaCreated, WarnOn
from vmamodel.scenario import parse_file

RW = "PROT_READ|PROT_WRITE"
ANON = "MAP_PRIVATE|MAP_ANONYMOUS"

SIMPLE = f"""
    # three pages, the middle one read-only
    a = mmap(BASE, 12K, {RW}, {ANON}) = BASE
    mprotect(a + 4K, 4K, PROT_READ) = 0
    mprotect(a, 4K, 0x100) = -EINVAL
"""


@dataclass
class _TracedSpace(FakeSpace):
    """A fake model space that traces its munmap calls, as the model's tracer would."""

    tracer: Tracer = field(default_factory=Tracer)

    def munmap(self, addr: int, length: int) -> None:
        self.tracer.emit(Syscall("munmap", (addr, length)))
        super().munmap(addr, length)

    def fork(self) -> _TracedSpace:
        return _TracedSpace(list(self.vmas))


@dataclass
class _Made:
    """Records the backends the command line asked for."""

    model_profile: str | None = None
    host_arena: tuple[int, int] | None = None
    host_ino_base: int = 0
    host_space: type[FakeSpace] = FakeSpace


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> _Made:
    record = _Made()

    def model(profile: str | None = None, files: object = None,
              config: object = None) -> FakeBackend:
        record.model_profile = profile
        backend = FakeBackend("model")
        backend.new_space = lambda: _TracedSpace()  # type: ignore[method-assign]
        return backend

    def host(files: object, arena: tuple[int, int]) -> FakeBackend:
        record.host_arena = arena
        backend = FakeBackend("host", ino_base=record.host_ino_base)
        backend.new_space = lambda: record.host_space(ino_base=record.host_ino_base)  # type: ignore[method-assign]
        return backend

    monkeypatch.setattr(cli_main, "ModelBackend", model)
    monkeypatch.setattr(cli_main, "HostBackend", host)
    return record


def write(tmp_path: Path, text: str, name: str = "s.vmas") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.startswith("vmamodel 0.1.0, ")  # and the build: test_buildinfo


def test_main_is_the_entry_point() -> None:
    assert callable(cli_main.main)


# ---------------------------------------------------------------------------------------------
# run


def test_run_prints_results_and_maps_after_each_step(tmp_path: Path, made: _Made) -> None:
    path = write(tmp_path, SIMPLE)
    result = invoke("run", path, "--profile", "6.18")
    assert result.exit_code == 0, result.output
    assert made.model_profile == "6.18"
    out = result.output
    assert f"{path}:3  a = mmap(BASE, 12K, {RW}, {ANON}) = 0x100000000000" in out
    assert f"{path}:5  mprotect(a, 4K, 0x100) = -1 EINVAL" in out
    assert out.count("100000000000-100000003000 rw-p 00000000 00:00 0") == 1
    assert out.count("100000001000-100000002000 r--p 00000000 00:00 0") == 2
    assert "3 calls, 0 failed expectations" in out


def test_run_uses_the_profile_directive(tmp_path: Path, made: _Made) -> None:
    invoke("run", write(tmp_path, "#! profile: mainline\nmunmap(BASE, 4K)"))
    assert made.model_profile == "mainline"


def test_run_shows_maps_only_at_markers(tmp_path: Path, made: _Made) -> None:
    path = write(tmp_path, f"""
        a = mmap(BASE, 4K, {RW}, {ANON})
        b = mmap(BASE + 4K, 4K, {RW}, {ANON})
        maps
        c = fork()
        smaps
    """)
    out = invoke("run", path).output
    assert out.count("100000000000-100000002000 rw-p") == 3  # maps; smaps of main and c
    assert "[main]" in out and "[c]" in out
    assert "VmFlags: rd wr" in out


def test_run_smaps_option(tmp_path: Path, made: _Made) -> None:
    out = invoke("run", write(tmp_path, SIMPLE), "--smaps").output
    assert "VmFlags: rd wr" in out and "Rss:" in out


def test_run_trace(tmp_path: Path, made: _Made) -> None:
    path = write(tmp_path, "munmap(BASE, 4K)")
    out = invoke("run", path, "--trace").output
    assert "· Syscall name=munmap args=(0x100000000000, 0x1000)" in out
    assert "Syscall" not in invoke("run", path).output


def test_format_event_shows_vm_flags_as_mnemonics() -> None:
    event = VmaCreated(1, 0x100000000000, 0x100000001000, 0x100000000, 0x100073)
    assert format_event(event) == (
        "VmaCreated vma_id=1 start=0x100000000000 end=0x100000001000 pgoff=0x100000000 "
        "flags=[rd wr mr mw me ac]")
    assert format_event(WarnOn("odd")) == "WarnOn message=odd"


def test_format_event() -> None:
    event = MergeAttempt("mmap", 0x100000000000, 0x100000001000, True, 3, (4, 5))
    assert format_event(event) == (
        "MergeAttempt op=mmap start=0x100000000000 end=0x100000001000 merged=True "
        "target_id=3 removed=(4, 5)")


def test_run_failed_expectation_exits_1(tmp_path: Path, made: _Made) -> None:
    result = invoke("run", write(tmp_path, "munmap(BASE, 4K) = -EINVAL"))
    assert result.exit_code == 1
    assert "✗ expected -1 EINVAL, got 0" in result.output
    assert "1 calls, 1 failed expectations" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("munmap(b, 4K)", ":1: unknown name 'b'"),
        ("\nmunmap(BASE, 4K\n", ":2: expected ',', found end of line"),
        ("#! profile: v0", ":1: unknown profile 'v0'"),
    ],
)
def test_run_syntax_error_exits_2(tmp_path: Path, made: _Made, text: str, message: str) -> None:
    path = write(tmp_path, text)
    result = CliRunner().invoke(cli, ["run", path])
    assert result.exit_code == 2
    assert f"error: {path}{message}" in result.output


def test_run_runtime_scenario_error_exits_2(tmp_path: Path, made: _Made) -> None:
    path = write(tmp_path, f"a = mmap(BASE, 0, {RW}, {ANON})\nmunmap(a, 4K)")
    result = CliRunner().invoke(cli, ["run", path])
    assert result.exit_code == 2
    assert f"error: {path}:2: 'a' has no value: its call on line 1 failed" in result.output


def test_run_arena_violation_exits_2(tmp_path: Path, made: _Made) -> None:
    result = CliRunner().invoke(cli, ["run", write(tmp_path, f"mmap(NULL, 4K, {RW}, {ANON})")])
    assert result.exit_code == 2
    assert "layout arena: mmap() address 0x0 must be fixed or hinted" in result.output


def test_run_base_option(tmp_path: Path, made: _Made) -> None:
    path = write(tmp_path, f"mmap(BASE, 4K, {RW}, {ANON}) = 0x200000000000")
    assert invoke("run", path, "--base", "0x200000000000").exit_code == 0
    bad = CliRunner().invoke(cli, ["run", path, "--base", "zero"])
    assert bad.exit_code == 2 and "'zero' is not an integer" in bad.output


def test_run_missing_file_exits_2(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["run", str(tmp_path / "none.vmas")]).exit_code == 2


# ---------------------------------------------------------------------------------------------
# diff


def test_diff_without_differences_exits_0(tmp_path: Path, made: _Made) -> None:
    made.host_ino_base = 5000  # inode numbers differ by nature
    path = write(tmp_path, SIMPLE + 'fd = memfd_create("m", 8K)\n'
                 f"mmap(BASE + 64K, 8K, {RW}, MAP_SHARED, fd, 0)\n")
    result = invoke("diff", path)
    assert result.exit_code == 0, result.output
    assert made.host_arena == (0x100000000000, 1 << 40)
    assert "no differences" in result.output
    assert "model" in result.output and "host" in result.output
    assert "/memfd:m (deleted)" in result.output


class _WrongProtect(FakeSpace):
    def mprotect(self, addr: int, length: int, prot: int) -> None:
        super().mprotect(addr, length, prot | 4 if prot == 1 else prot)


def test_diff_with_differences_exits_1(tmp_path: Path, made: _Made) -> None:
    made.host_space = _WrongProtect
    result = invoke("diff", write(tmp_path, SIMPLE))
    assert result.exit_code == 1
    out = result.output
    assert "≠" in out
    assert "100000001000-100000002000 r-xp" in out
    assert "line 4 [main]: maps differ" in out
    assert "differences, 0 failed expectations" in out


def test_diff_shows_every_step_without_markers(tmp_path: Path, made: _Made) -> None:
    out = invoke("diff", write(tmp_path, SIMPLE)).output
    assert out.count("100000001000-100000002000 r--p") == 4  # two steps, two columns


def test_diff_shows_vmflags_at_smaps_markers(tmp_path: Path, made: _Made) -> None:
    made.host_space = _WrongProtect
    path = write(tmp_path, f"a = mmap(BASE, 4K, {RW}, {ANON})\nsmaps\nmprotect(a, 4K, 1)\nsmaps")
    out = invoke("diff", path).output
    assert out.count("  VmFlags: rd wr ") == 2  # the first smaps marker, on both sides
    assert out.count("  VmFlags: rd ") == 4  # and the second
    assert "r-xp" in out


def test_run_refuses_unknown_profile_option(tmp_path: Path, made: _Made) -> None:
    result = CliRunner().invoke(cli, ["run", write(tmp_path, "munmap(BASE, 4K)"), "--profile",
                                      "v0"])
    assert result.exit_code == 2 and "Invalid value for '--profile'" in result.output


def test_diff_failed_expectation_exits_1(tmp_path: Path, made: _Made) -> None:
    result = invoke("diff", write(tmp_path, "munmap(BASE, 4K) = -1"))
    assert result.exit_code == 1
    assert "✗ expected -1, got 0" in result.output


def test_diff_syntax_error_exits_2(tmp_path: Path, made: _Made) -> None:
    result = CliRunner().invoke(cli, ["diff", write(tmp_path, "munmap(BASE, 4K) = -EWHAT")])
    assert result.exit_code == 2
    assert "unknown name 'EWHAT'" in result.output


def test_diff_refuses_process_layout(tmp_path: Path, made: _Made) -> None:
    result = CliRunner().invoke(cli, ["diff", write(tmp_path, "#! layout: process\nbrk(0)")])
    assert result.exit_code == 2
    assert "layout 'process' cannot be run on the host yet" in result.output


def test_diff_scenario_error_on_both_sides_exits_2(tmp_path: Path, made: _Made) -> None:
    path = write(tmp_path, f"a = mmap(BASE, 0, {RW}, {ANON})\nmunmap(a, 4K)")
    result = CliRunner().invoke(cli, ["diff", path])
    assert result.exit_code == 2
    assert "model: error:" in result.output and "host: error:" in result.output


# ---------------------------------------------------------------------------------------------
# The real model and the real host kernel

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.vmas"))
#: Examples that open built-in drivers (vmamodel.drivers.devices): the host has none of
#: them, so ``diff`` refuses these and only ``run`` is tested on them.
MODEL_ONLY = [path for path in EXAMPLES if parse_file(path).model_only]
HOST_EXAMPLES = [path for path in EXAMPLES if path not in MODEL_ONLY]


def test_examples_exist() -> None:
    names = {path.stem for path in HOST_EXAMPLES}
    assert {"merge_and_split", "anon_vma", "fixed_replace", "memfd", "errno",
            "accounting", "mmap_prepare"} <= names
    assert {"drivers", "driver_refcount"} <= {path.stem for path in MODEL_ONLY}
    # The host comparison keeps its weight: most examples are still judged by the kernel.
    assert len(HOST_EXAMPLES) > len(MODEL_ONLY)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_on_the_model(example: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(example)])
    assert result.exit_code == 0, result.output
    assert "0 failed expectations" in result.output


@pytest.mark.host
@pytest.mark.parametrize("example", HOST_EXAMPLES, ids=lambda p: p.stem)
def test_example_has_no_difference_on_the_host(example: Path) -> None:
    result = CliRunner().invoke(cli, ["diff", str(example)])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("no differences")


@pytest.mark.parametrize("example", MODEL_ONLY, ids=lambda p: p.stem)
def test_diff_refuses_a_model_only_example(example: Path) -> None:
    line, path = parse_file(example).model_only[0]
    result = CliRunner().invoke(cli, ["diff", str(example)])
    assert result.exit_code == 2
    assert f"error: {example}:{line}: open({path!r}) reaches a built-in driver" in result.output


def test_run_prints_the_driver_ledgers() -> None:
    example = next(path for path in MODEL_ONLY if path.stem == "driver_refcount")
    out = CliRunner().invoke(cli, ["run", str(example)]).output
    assert "ledger refcount_good: balanced" in out
    assert "ledger refcount_bad: ref +1 (acquired by mmap_prepare 2, open 2; " \
        "released by close 3)" in out


def test_run_trace_shows_the_driver_hooks(tmp_path: Path) -> None:
    path = write(tmp_path, """
        good = open("/dev/good0")
        mmap(BASE, 8K, PROT_READ, MAP_SHARED|MAP_FIXED, good, 0) = BASE
    """)
    out = CliRunner().invoke(cli, ["run", "--trace", path]).output
    hooks = [line.split("hook=")[1].split()[0] for line in out.splitlines() if "hook=" in line]
    assert hooks == ["mmap_prepare", "mapped"]
    assert "ActionStep step=complete action=NOTHING" in out


@pytest.mark.host
def test_diff_finds_a_wrong_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A "model" that gets mprotect wrong, against the real kernel.
    def model(profile: str | None = None, files: object = None,
              config: object = None) -> FakeBackend:
        backend = FakeBackend("model")
        backend.new_space = lambda: _WrongProtect()  # type: ignore[method-assign]
        return backend

    monkeypatch.setattr(cli_main, "ModelBackend", model)
    result = invoke("diff", write(tmp_path, SIMPLE))
    assert result.exit_code == 1
    assert "line 4 [main]: maps differ" in result.output
