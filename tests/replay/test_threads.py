"""Threads: calls of different threads whose lifetimes overlap are tried in their admissible
orders before a divergence is reported."""

from __future__ import annotations

from pathlib import Path

import vmamodel as v
from vmamodel.mm import AddressSpace
from vmamodel.replay.recording import recording_from_files
from vmamodel.replay.replay import replay

RW = v.PROT_READ | v.PROT_WRITE
ANON = v.MAP_PRIVATE | v.MAP_ANONYMOUS
CLONE = "10 clone3({flags=0x3d0f00, exit_signal=0, stack=0x7f0000000000} => " \
    "{parent_tid=[11]}, 88) = 11\n"


def _seed() -> str:
    mm = AddressSpace(mmap_base=0x7F0000000000)
    mm.mmap(0x7EFFFFF00000, 0x1000, RW, ANON | v.MAP_FIXED)
    return mm.smaps()


def _addresses() -> tuple[int, int]:
    """Where the kernel put 10's 4 KiB mapping and then 11's 8 KiB one."""
    mm = AddressSpace.from_maps(
        "".join(line + "\n" for line in _seed().splitlines() if "-" in line.split(" ")[0]),
        smaps=_seed(), mmap_base=0x7F0000000000,
    )
    return mm.mmap(0, 0x1000, RW, ANON), mm.mmap(0, 0x2000, v.PROT_READ, ANON)


def _replay(tmp_path: Path, log: str):  # type: ignore[no-untyped-def]
    (tmp_path / "t.log").write_text(log)
    (tmp_path / "s.smaps").write_text(_seed())
    rec = recording_from_files(tmp_path / "t.log", tmp_path / "s.smaps", pid=10,
                               traits={"mmap_base": 0x7F0000000000})
    return replay(rec)


def test_overlapping_calls_are_reordered(tmp_path: Path) -> None:
    first, second = _addresses()
    result = _replay(tmp_path, (
        CLONE
        + "10 mmap(NULL, 4096, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + f"11 mmap(NULL, 8192, 0x1, 0x22, -1, 0) = {second:#x}\n"
        + f"10 <... mmap resumed>) = {first:#x}\n"
    ))
    assert result.exact, [d.describe() for d in result.divergences]
    assert result.reordered == 2 and result.replayed == 3  # clone3 and both mmaps


def test_calls_that_did_not_overlap_are_not_reordered(tmp_path: Path) -> None:
    first, second = _addresses()
    result = _replay(tmp_path, (
        CLONE
        + f"11 mmap(NULL, 8192, 0x1, 0x22, -1, 0) = {second:#x}\n"
        + f"10 mmap(NULL, 4096, 0x3, 0x22, -1, 0) = {first:#x}\n"
    ))
    assert [d.kind for d in result.divergences] == ["result"]
    assert result.reordered == 0
