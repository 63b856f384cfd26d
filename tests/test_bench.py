"""`vmamodel bench` runs end to end at a tiny size (a smoke test: nothing here is timed)."""

from __future__ import annotations

from click.testing import CliRunner

from vmamodel.bench import KINDS, make_sequence, unsupported_kinds
from vmamodel.cli.main import cli


def test_bench_prints_every_kind_and_the_targets() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "--sizes", "300", "--rounds", "12", "--repeats", "1", "--memory-n", "50"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "N = 300 VMAs on the model, 300 on the kernel" in out
    assert "every call had the same outcome" in out
    for kind in KINDS:
        if kind not in unsupported_kinds():
            assert f"  {kind} " in out
    assert "bytes per VMA" in out and "guard tests per call" in out


def test_sequence_is_reproducible_and_leaves_no_placed_mapping() -> None:
    first, second = make_sequence(100, 30, 7), make_sequence(100, 30, 7)
    assert first.ops == second.ops
    assert first.ops != make_sequence(100, 30, 8).ops
    kinds = first.kinds()
    assert kinds.count("mmap placed") == 30
    # every placed mapping is unmapped again: the last call of the sequence is its munmap
    assert kinds[-1] == "munmap"
