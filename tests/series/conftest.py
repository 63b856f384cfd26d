"""Fixtures for the seed tests (the mmap_prepare series): model only - the host kernel has
none of these drivers, and 6.18 has no mmap actions nor ``vm_ops->mapped``.

- ``mm``: a fresh v4 address space (overrides the top-level model/host ``mm``).
- ``make_mm(profile, **kwargs)``: a fresh address space of any profile.
- ``form``: a driver form, "new" (mmap_prepare) or "old" (legacy .mmap).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vmamodel import AddressSpace


@pytest.fixture
def make_mm() -> Callable[..., AddressSpace]:
    def make(profile: str = "v4", **kwargs: Any) -> AddressSpace:
        return AddressSpace(profile=profile, debug=True, **kwargs)

    return make


@pytest.fixture
def mm(make_mm: Callable[..., AddressSpace]) -> AddressSpace:
    return make_mm("v4")


@pytest.fixture(params=["v4", "mainline"])
def new_mm(request: pytest.FixtureRequest, make_mm: Callable[..., AddressSpace]) -> AddressSpace:
    """An address space of each profile that has ``mapped`` (v4, mainline)."""
    return make_mm(request.param)


@pytest.fixture(params=["new", "old"])
def form(request: pytest.FixtureRequest) -> str:
    """A driver's form: the series' ``mmap_prepare`` one, or the legacy ``.mmap`` one."""
    return str(request.param)
