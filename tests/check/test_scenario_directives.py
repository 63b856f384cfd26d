"""The scenario language's fault injection and lifecycle check: ``#! inject:``,
``#! check: lifecycle``, ``stacked()`` and ``open("module:factory")``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vmamodel.cli.main import cli
from vmamodel.scenario import ModelBackend, ScenarioError, execute, options_for, parse

HEAD = "#! profile: v4\n"


def run(text: str) -> tuple[int, str]:
    scenario = parse(text)
    backend = ModelBackend(scenario.profile)
    result = execute(scenario, backend, options_for(scenario, smaps=False))
    return (1 if result.findings else 0), "\n".join(result.findings + result.ledgers)


def test_inject_fails_the_nth_reach() -> None:
    text = HEAD + "#! inject: vma_alloc nth=2\n" \
        "fd = memfd_create(\"m\", 64K)\n" \
        "mmap(BASE, 4K, PROT_READ, MAP_SHARED|MAP_FIXED, fd, 0) = BASE\n" \
        "mmap(BASE + 64K, 4K, PROT_READ, MAP_SHARED|MAP_FIXED, fd, 0) = -ENOMEM\n" \
        "mmap(BASE + 128K, 4K, PROT_READ, MAP_SHARED|MAP_FIXED, fd, 0) = BASE + 128K\n"
    scenario = parse(text)
    result = execute(scenario, ModelBackend(scenario.profile), options_for(scenario))
    assert result.failed_expectations == [] and result.error is None


def test_check_lifecycle_reports_the_leak() -> None:
    text = HEAD + "#! check: lifecycle\n" + 'fd = open("/dev/bad0")\n' \
        "mmap(BASE, 4K, PROT_READ, MAP_SHARED|MAP_FIXED, fd, 0)\n" \
        "mmap(BASE + 4K, 4K, PROT_READ, MAP_SHARED|MAP_FIXED, fd, 4K)\n" \
        "exit()\n"
    code, out = run(text)
    assert code == 1 and "finding [driver] leak in mmap_prepare" in out
    assert "vma_merge_new_range()" in out


def test_without_check_no_findings() -> None:
    text = HEAD + 'fd = open("/dev/bad0")\n' \
        "mmap(BASE, 4K, PROT_READ, MAP_SHARED|MAP_FIXED, fd, 0)\n" \
        "mmap(BASE + 4K, 4K, PROT_READ, MAP_SHARED|MAP_FIXED, fd, 4K)\nexit()\n"
    code, out = run(text)
    assert code == 0 and "ref +1" in out


def test_good_driver_balances_under_check() -> None:
    text = HEAD + "#! check: lifecycle\n" + 'fd = open("/dev/good0")\n' \
        "mmap(BASE, 8K, PROT_READ, MAP_SHARED|MAP_FIXED, fd, 0)\n" \
        "mprotect(BASE, 4K, PROT_NONE)\nchild = fork()\nchild.exit()\nexit()\n"
    assert run(text) == (0, "ledger refcount_good: balanced")


def test_stacked_outer_failure_is_the_kernels() -> None:
    text = "#! profile: mainline\n#! check: lifecycle\n" + 'fd = open("/dev/good0")\n' \
        "up = stacked(fd, 22)\n" \
        "mmap(BASE, 4K, PROT_READ, MAP_SHARED|MAP_FIXED, up, 0) = -EINVAL\nexit()\n"
    code, out = run(text)
    assert code == 1 and "finding [kernel] leak in mapped" in out


@pytest.mark.parametrize(("directive", "message"), [
    ("#! inject: nowhere", "unknown failure point 'nowhere'"),
    ("#! inject: mapped nth=0", "nth counts from 1"),
    ("#! inject: mapped n=2", "inject is written"),
    ("#! check: everything", "unknown check 'everything'"),
])
def test_bad_directives_name_the_line(directive: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as info:
        parse(HEAD + directive + "\n", "x.vmas")
    assert info.value.line == 2


def test_bad_directive_exits_2_from_run(tmp_path: Path) -> None:
    path = tmp_path / "bad.vmas"
    path.write_text("#! inject: nowhere\n")
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 2 and "bad.vmas:1" in result.output


def test_diff_refuses_stacked_and_factories(tmp_path: Path) -> None:
    for line in ('fd = memfd_create("m", 4K)\nup = stacked(fd)\n',
                 'fd = open("tests.check.planted:open_correct")\n'):
        path = tmp_path / "model_only.vmas"
        path.write_text(line)
        result = CliRunner().invoke(cli, ["diff", str(path)])
        assert result.exit_code == 2 and "only the model" in result.output


def test_factory_open_reaches_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent)
    text = HEAD + "#! check: lifecycle\n" + 'fd = open("planted:open_forgot_close")\n' \
        "mmap(BASE, 4K, PROT_READ, MAP_SHARED|MAP_FIXED, fd, 0)\nexit()\n"
    code, out = run(text)
    assert code == 1 and "leak in mapped" in out and "private_data.refs: 0 -> 1" in out


def test_unknown_factory_is_a_crash_of_the_step() -> None:
    scenario = parse('fd = open("no_such_module_xyz:f")\n')
    result = execute(scenario, ModelBackend(), options_for(scenario))
    assert result.crashed
