"""`vmamodel bench` runs end to end at a tiny size (a smoke test: nothing here is timed)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from vmamodel.bench import KINDS, make_sequence, unsupported_kinds
from vmamodel.bench.pairs import (
    PAIRS,
    SETUP,
    KernelPairs,
    ModelPairs,
    least_kernel,
    least_means,
    least_model,
    make_pair_sequence,
    pair_means,
    widest_spread,
)
from vmamodel.cli.main import cli


@pytest.fixture(scope="module")
def tiny_bench() -> Result:
    """One run of `vmamodel bench` at a tiny size, shared by the tests that read its report."""
    return CliRunner().invoke(
        cli, ["bench", "--sizes", "300", "--rounds", "12", "--repeats", "1", "--memory-n", "50",
              "--pair-rounds", "10", "--placed-n", "100", "--trials", "2"]
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


def test_trials_keep_each_sides_least_and_report_the_spread() -> None:
    fixed, mprotect, placed = PAIRS
    first = {fixed: 10.0, mprotect: 30.0, placed: 20.0}
    second = {fixed: 15.0, mprotect: 24.0, placed: 20.0}
    least, spread = least_means([first, second])
    assert least == {fixed: 10.0, mprotect: 24.0, placed: 20.0}
    assert spread == {fixed: 1.5, mprotect: 1.25, placed: 1.0}
    trials = [ModelPairs("pure", {1000: first}, build_s={1000: 0.5}, bytes_per_vma=290.0),
              ModelPairs("pure", {1000: second}, build_s={1000: 0.7})]
    model = least_model(trials)
    # memory and the builds come from the first trial, the only one that measures them
    assert model.pairs == {1000: least} and model.build_s == {1000: 0.5}
    assert model.bytes_per_vma == 290.0
    slow = {**first, fixed: 20.0}
    kernel = least_kernel([KernelPairs("C", 1000, slow, []), KernelPairs("C", 1000, second, [])])
    assert kernel.pairs == {**second, fixed: 15.0}
    assert widest_spread([model], {1000: kernel}) == (1.5, "pure, fixed mmap + munmap, 1,000 VMAs")
    assert kernel.spread[mprotect] == 1.25
    model.spread[1000][fixed] = 1.0
    assert widest_spread([model], {1000: kernel})[1] == "kernel, fixed mmap + munmap, 1,000 VMAs"


def test_trials_must_be_at_least_one() -> None:
    result = CliRunner().invoke(cli, ["bench", "--trials", "0"])
    assert result.exit_code == 2
    assert "--trials" in result.output
