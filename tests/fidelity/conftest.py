"""Fixtures of the fidelity tests: the core tests' files, which work on both backends."""

from __future__ import annotations

from core.conftest import memfd, regular_file

__all__ = ["memfd", "regular_file"]
