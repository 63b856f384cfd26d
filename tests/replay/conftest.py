"""Fixtures of the replay tests (helpers in programs_util)."""

from __future__ import annotations

from .programs_util import binaries

__all__ = ["binaries"]
