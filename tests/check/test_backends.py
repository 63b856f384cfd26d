"""The checker's exploration runs on vmamodel.campaign's executor, the one `vmamodel fuzz` uses:
the local process pool and a local Ray instance (2 CPUs) give the findings of a run in one
process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vmamodel.campaign import LocalBackend, RayBackend
from vmamodel.check import check
from vmamodel.check.findings import Finding


def _keys(findings: list[Finding]) -> list[tuple[str, ...]]:
    return sorted((f.origin, f.kind, f.hook, f.rule, f.target, *f.profiles) for f in findings)


def test_the_local_pool_finds_what_one_process_finds() -> None:
    alone = check("/dev/bad0", profiles=["v4"], jobs=1)
    pooled = check("/dev/bad0", profiles=["v4"], backend=LocalBackend(jobs=2))
    assert alone and _keys(alone) == _keys(pooled)


@pytest.fixture
def local_ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="the Ray backend needs: pip install 'vmamodel[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_finds_what_the_local_pool_finds(local_ray: Any) -> None:
    pooled = check("/dev/bad0", profiles=["v4"], backend=LocalBackend(jobs=2))
    by_ray = check("/dev/bad0", profiles=["v4"], backend=RayBackend(resources={}))
    assert pooled and _keys(by_ray) == _keys(pooled)
