"""The Ray backend on a local Ray instance started here with 2 CPUs and the oracle resource:
the same shards give the same records as on the local backend, planted differences and
their shrunk scenarios included; and a missing ray names the command that installs it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vmamodel.campaign import RayBackend, RayMissing, Shard, run_shards
from vmamodel.campaign.core import Emitted, Finished
from vmamodel.campaign.ray_backend import ORACLE_RESOURCE
from vmamodel.cli.main import cli
from vmamodel.fuzz import planted

from . import tasks

ray = pytest.importorskip("ray", reason="the Ray backend needs: pip install 'vmamodel[ray]'")

#: What must agree between backends (where and how long differ by nature).
SAME = ("seed", "calls", "status", "divergence", "shrunk", "kernel", "traits")


@pytest.fixture
def local_ray() -> Iterator[Any]:
    ray.init(num_cpus=2, resources={ORACLE_RESOURCE: 2}, include_dashboard=False,
             log_to_driver=False, runtime_env={"env_vars": {planted.ENV: "readonly-merge"}})
    # The toy tasks live in a test module that Ray's workers cannot import: send them whole.
    ray.cloudpickle.register_pickle_by_value(tasks)
    try:
        yield ray
    finally:
        ray.shutdown()


def records(directory: Path) -> dict[int, dict[str, Any]]:
    out = {}
    for path in directory.glob("shards/*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            out[record["seed"]] = {key: record.get(key) for key in SAME}
    return out


@pytest.mark.host
def test_ray_gives_the_local_backends_results(tmp_path: Path, local_ray: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(planted.ENV, "readonly-merge")
    args = ["--seeds", "0:4", "--length", "30", "--shard-size", "2"]
    by_ray = CliRunner().invoke(cli, ["fuzz", str(tmp_path / "ray"), "--backend", "ray", *args])
    by_pool = CliRunner().invoke(cli, ["fuzz", str(tmp_path / "local"), "-j", "2", *args])
    assert by_ray.exit_code == by_pool.exit_code == 1, by_ray.output + by_pool.output
    mine, theirs = records(tmp_path / "ray"), records(tmp_path / "local")
    assert sorted(mine) == [0, 1, 2, 3]
    assert mine == theirs
    assert any(r["status"] == "diff" and r["shrunk"]["calls"] <= 5 for r in mine.values())
    assert "Ray" in by_ray.output
    # One Ray instance per test session is enough (and xdist would start two): the generic
    # executor's checks share it.
    shards_need_the_oracle_resource()


def shards_need_the_oracle_resource() -> None:
    shards = [Shard(f"s{i}", (i, i + 10)) for i in range(5)]
    events = list(run_shards(shards, tasks.squares, RayBackend(inflight=2)))
    assert sorted(e.item for e in events if isinstance(e, Emitted)) == sorted(
        n * n for i in range(5) for n in (i, i + 10))
    assert sorted(e.key for e in events if isinstance(e, Finished)) == [f"s{i}" for i in range(5)]
    with pytest.raises(RayMissing, match="no node of the Ray cluster offers the resource 'gpu9'"):
        list(run_shards(shards, tasks.squares, RayBackend(resources={"gpu9": 1})))


def test_without_ray_the_backend_says_what_to_install(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(RayMissing, match=r"pip install 'vmamodel\[ray\]'"):
        list(run_shards([Shard("s", (1,))], tasks.squares, RayBackend()))
    result = CliRunner().invoke(cli, ["fuzz", str(tmp_path), "--backend", "ray", "--calls", "10"])
    assert result.exit_code == 2
    assert "pip install 'vmamodel[ray]'" in result.output
