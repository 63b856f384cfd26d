"""`vmamodel bench` runs end to end at a tiny size (a smoke test: nothing here is timed)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from vmamodel.bench import KINDS, make_sequence, unsupported_kinds
from vmamodel.bench.pairs import PAIRS, SETUP, make_pair_sequence, pair_means
from vmamodel.cli.main import cli


@pytest.fixture(scope="module")
def tiny_bench() -> Result:
    """One run of `vmamodel bench` at a tiny size, shared by the tests that read its report."""
    return CliRunner().invoke(
        cli, ["bench", "--sizes", "300", "--rounds", "12", "--repeats", "1", "--memory-n", "50",
              "--pair-rounds", "10", "--placed-n", "100"]
    )


def test_bench_prints_every_kind_and_the_targets(tiny_bench: Result) -> None:
    result = tiny_bench
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


def test_pairs_are_reported_with_their_targets(tiny_bench: Result) -> None:
    result = tiny_bench
    assert result.exit_code == 0, result.output
    out = result.stdout
    table = out[out.index("Simple pairs"):out.index("Targets (simple pairs)")]
    for pair in PAIRS:
        assert f"  {pair} " in table
    assert "every call had the same outcome" in table
    assert "bytes per VMA" in out and "VMAs built by placed mmap" in out
    # the pairs lead the report, before the mix
    assert out.index("Simple pairs") < out.index("The mix")


def test_pair_sequence_labels_each_call_and_sums_pairs() -> None:
    pseq = make_pair_sequence(50, 4, 3)
    assert len(pseq.labels) == len(pseq.seq)
    assert pseq.labels.count(SETUP) == 2 * 4
    for pair in PAIRS:
        assert pseq.labels.count(pair) == 2 * 4
    means = pair_means(pseq.labels, [10] * len(pseq.labels), 4)
    assert means == dict.fromkeys(PAIRS, 20.0)


def test_other_build_must_be_an_executable() -> None:
    result = CliRunner().invoke(cli, ["bench", "--other-build", "/nonexistent/python"])
    assert result.exit_code == 2
    assert "--other-build" in result.output
