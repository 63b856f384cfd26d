"""A planted model bug, for testing the fuzzer only: never set it outside tests.

The environment variable ``VMAMODEL_FUZZ_PLANTED_BUG=readonly-merge`` makes every fuzz worker
(and any process that calls :func:`install`) replace ``vmamodel.merge.merge_refusal`` with a
wrapper that refuses to merge a read-only, non-writable range into the VMA on its left (the
kernel's can_vma_merge_after() has no such rule). Two adjacent read-only private anonymous
mmaps are then two VMAs in the model and one in the kernel: the fuzzer must find that and
shrink it to a couple of calls.

The switch is read once per shard by the fuzz task (vmamodel.fuzz.shard), never by the core:
the model's hot path is untouched unless a test installs the wrapper. It patches the module
attribute, so it has no effect on a mypyc-compiled merge module (install() then refuses).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from vmamodel import merge
from vmamodel.constants import VM_READ, VM_WRITE

ENV = "VMAMODEL_FUZZ_PLANTED_BUG"
BUGS = ("readonly-merge",)
_ORIGINAL: Callable[..., str | None] = merge.merge_refusal


def _readonly_merge(vmg: Any, merge_next: bool) -> str | None:
    """merge_refusal() plus the planted rule."""
    if not merge_next and vmg.flags & (VM_READ | VM_WRITE) == VM_READ:
        return "planted: read-only ranges do not merge left"
    return _ORIGINAL(vmg, merge_next)


def install(name: str) -> None:
    """Plant bug ``name`` in this process (see BUGS)."""
    if name not in BUGS:
        raise ValueError(f"{ENV}={name!r}: no such planted bug (known: {', '.join(BUGS)})")
    if not merge.__file__ or not merge.__file__.endswith(".py"):
        raise RuntimeError("the planted bug cannot patch a compiled vmamodel.merge")
    merge.merge_refusal = _readonly_merge


def uninstall() -> None:
    merge.merge_refusal = _ORIGINAL


def install_from_env() -> None:
    """install() the bug named by VMAMODEL_FUZZ_PLANTED_BUG, if set."""
    name = os.environ.get(ENV)
    if name:
        install(name)
