"""Where the host oracle's child may map: one private arena of its address space.

The base is far from anything the Python runtime or the C library maps, so every scenario's
fixed addresses land in memory the child owns alone (``BASE`` in the scenario language).
"""

from __future__ import annotations

from typing import Final

from vmamodel.constants import PAGE_SIZE

ARENA_BASE: Final = 0x100000000000
ARENA_SIZE: Final = 1 << 40
DEFAULT_ARENA: Final = (ARENA_BASE, ARENA_SIZE)


def at(page: int) -> int:
    """The address of page ``page`` of the arena (``BASE + page * PAGE`` in a scenario)."""
    return ARENA_BASE + page * PAGE_SIZE
