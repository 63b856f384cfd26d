"""Files that work on both backends: the same File object is mapped by the model and, through
the oracle's child, by the real kernel."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import vmamodel as v


@pytest.fixture
def memfd() -> Callable[[str, int], v.File]:
    return v.memfd_create


@pytest.fixture
def regular_file(tmp_path: Path) -> Iterator[Callable[[int, int], v.File]]:
    """A real file of ``size`` bytes opened with ``flags``; its dev/ino are the real ones."""
    counter = iter(range(1000))

    def make(flags: int, size: int) -> v.File:
        path = tmp_path / f"file{next(counter)}"
        with open(path, "wb") as f:
            f.truncate(size)
        st = os.stat(path)
        return v.open_file(
            str(path), flags, size, dev=(os.major(st.st_dev), os.minor(st.st_dev)), ino=st.st_ino
        )

    yield make
