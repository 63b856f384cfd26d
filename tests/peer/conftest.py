"""Fixtures of the peer tests: the core tests' files (memfd, regular_file) that work on both
backends, and ``sealed``, which builds the layout the LTP mseal tests start from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.conftest import memfd, regular_file
from core.util import NOREPLACE, RW, P, at

__all__ = ["memfd", "regular_file", "sealed"]


@pytest.fixture
def sealed(mm: Any) -> Callable[[int], Any]:
    """``sealed(prot)``: 8 pages of private anonymous memory at arena page 0 with ``prot``,
    page [2, 3) sealed (LTP mseal01's setup), so the space holds [0,2) [2,3) sl [3,8)."""

    def make(prot: int = RW) -> Any:
        mm.mmap(at(0), 8 * P, prot, NOREPLACE)
        mm.mseal(at(2), P)
        return mm

    return make
