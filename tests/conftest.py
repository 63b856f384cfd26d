"""Shared fixtures: every backend-agnostic test runs once on the model and once on the host.

- ``backend``: a factory, parametrised over "model" and "host"; ``backend(**kwargs)`` makes a
  fresh address space of that kind (kwargs go to the constructor). Host children are closed
  at teardown. ``backend.name`` says which one it is.
- ``mm``: ``backend()``, a fresh empty address space.
- ``ARENA`` / ``arena``: the base address tests use for fixed addresses; it is the start of
  the host backend's default arena, far from anything the Python runtime maps.

Hypothesis: profile "ci" (derandomized, no deadline, blobs printed) by default, so that a plain
``pytest`` is deterministic; ``HYPOTHESIS_PROFILE=dev`` draws new random examples to explore.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import vmamodel
from vmamodel import buildinfo
from vmamodel.host import HostAddressSpace, host_model_kwargs
from vmamodel.host.arena import ARENA_BASE as ARENA
from vmamodel.mm import AddressSpace
from vmamodel.space import MmSpace

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
# The host backend spends ~50 ms starting a child, so examples can be slow.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config: pytest.Config) -> str:
    """The build under test, first in pytest's header: CI runs the suite on both builds."""
    del config
    package = Path(vmamodel.__file__).parent
    return f"vmamodel build: {buildinfo.build_name()} ({buildinfo.describe()}), from {package}"


class Backend:
    """Makes address spaces of one kind and ends the host ones (child processes) afterwards."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._hosts: list[HostAddressSpace] = []

    @property
    def is_host(self) -> bool:
        return self.name == "host"

    def __call__(self, **kwargs: Any) -> MmSpace:
        if not self.is_host:
            return AddressSpace(**{**host_model_kwargs(), **kwargs})
        host = HostAddressSpace(**kwargs)
        self._hosts.append(host)
        return host

    def close(self) -> None:
        for host in self._hosts:
            host.close()
        self._hosts.clear()

    def __repr__(self) -> str:
        return f"Backend({self.name})"


@pytest.fixture(params=["model", pytest.param("host", marks=pytest.mark.host)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A factory of fresh address spaces of the parametrised kind."""
    factory = Backend(request.param)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def mm(backend: Backend) -> MmSpace:
    """A fresh, empty address space (model or host)."""
    return backend()


@pytest.fixture
def arena() -> int:
    """The base address for fixed mappings (see ARENA)."""
    return ARENA
