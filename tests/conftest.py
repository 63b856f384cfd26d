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
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from vmamodel.host import DEFAULT_ARENA

ARENA = DEFAULT_ARENA[0]
ARENA_SIZE = DEFAULT_ARENA[1]

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
# The host backend spends ~50 ms starting a child, so examples can be slow.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class Backend:
    """Makes address spaces of one kind and closes the host ones afterwards."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._spaces: list[Any] = []

    @property
    def is_host(self) -> bool:
        return self.name == "host"

    def __call__(self, **kwargs: Any) -> Any:
        if self.is_host:
            from vmamodel.host import HostAddressSpace

            space: Any = HostAddressSpace(**kwargs)
        else:
            from vmamodel.host import host_model_kwargs

            space = _model_class()(**{**host_model_kwargs(), **kwargs})
        self._spaces.append(space)
        return space

    def close(self) -> None:
        for space in self._spaces:
            closer = getattr(space, "close", None)
            if callable(closer):
                closer()
        self._spaces.clear()

    def __repr__(self) -> str:
        return f"Backend({self.name})"


def _model_class() -> Any:
    # Imported lazily: the model may be mid-rewrite while the host tests still run.
    try:
        from vmamodel.mm import AddressSpace
    except ImportError as exc:  # temporary: only while mm.py does not exist yet
        pytest.skip(f"the model (vmamodel.mm.AddressSpace) cannot be imported: {exc}")
    return AddressSpace


@pytest.fixture(params=["model", pytest.param("host", marks=pytest.mark.host)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A factory of fresh address spaces of the parametrised kind."""
    factory = Backend(request.param)
    if not factory.is_host:
        _model_class()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def mm(backend: Backend) -> Any:
    """A fresh, empty address space (model or host)."""
    return backend()


@pytest.fixture
def arena() -> int:
    """The base address for fixed mappings (see ARENA)."""
    return ARENA
