"""Helpers of the peer tests (the layout helpers are the core tests' own: core.util)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def errno_of(fn: Callable[..., Any], *args: Any) -> int:
    """The errno ``fn(*args)`` fails with (the test fails if it succeeds)."""
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno or 0


def state(mm: Any) -> tuple[str, str]:
    """maps and smaps together: what must not change when a call fails without effect."""
    return mm.maps(), mm.smaps()
