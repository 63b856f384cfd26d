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


def _real_order(unmap_first: bool) -> tuple[int, int, int]:
    """Thread 11 maps x (12 KiB, rw) and y (4 KiB, r); x is unmapped and thread 10 maps 8 KiB:
    where x, y and 10's mapping are when the munmap took effect first (or last)."""
    mm = AddressSpace.from_maps(
        "".join(line + "\n" for line in _seed().splitlines() if "-" in line.split(" ")[0]),
        smaps=_seed(), mmap_base=0x7F0000000000,
    )
    x = mm.mmap(0, 0x3000, RW, ANON)
    y = mm.mmap(0, 0x1000, v.PROT_READ, ANON)
    if unmap_first:
        mm.munmap(x, 0x3000)
        return x, y, mm.mmap(0, 0x2000, RW, ANON)
    z = mm.mmap(0, 0x2000, RW, ANON)
    mm.munmap(x, 0x3000)
    return x, y, z


def test_a_call_that_left_later_but_took_effect_first_is_found_past_many_overlaps(
    tmp_path: Path,
) -> None:
    """The churn program's interleaving: while 10's mmap is in the kernel, 11 finishes
    several calls and then enters a munmap that frees the hole the mmap gets; strace shows
    the munmap leaving last. Every call between them overlaps the mmap too."""
    x, y, z = _real_order(unmap_first=True)
    assert x <= z < x + 0x3000
    log = (
        CLONE
        + f"11 mmap(NULL, 12288, 0x3, 0x22, -1, 0) = {x:#x}\n"
        + f"11 mmap(NULL, 4096, 0x1, 0x22, -1, 0) = {y:#x}\n"
        + "10 mmap(NULL, 8192, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + "".join(f"11 mprotect({y:#x}, 4096, 0x1) = 0\n" for _ in range(5))
        + f"11 munmap({x:#x}, 12288 <unfinished ...>\n"
        + f"10 <... mmap resumed>) = {z:#x}\n"
        + "11 <... munmap resumed>) = 0\n"
    )
    result = _replay(tmp_path, log)
    assert result.exact, [d.describe() for d in result.divergences]
    assert result.replayed == 10 and result.reordered == 2


def test_a_call_that_left_first_but_took_effect_later_is_moved_after(tmp_path: Path) -> None:
    x, y, z = _real_order(unmap_first=False)
    assert z < y
    log = (
        CLONE
        + f"11 mmap(NULL, 12288, 0x3, 0x22, -1, 0) = {x:#x}\n"
        + f"11 mmap(NULL, 4096, 0x1, 0x22, -1, 0) = {y:#x}\n"
        + f"11 munmap({x:#x}, 12288 <unfinished ...>\n"
        + "10 mmap(NULL, 8192, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + "11 <... munmap resumed>) = 0\n"
        + f"11 mprotect({y:#x}, 4096, 0x1) = 0\n"
        + f"10 <... mmap resumed>) = {z:#x}\n"
    )
    result = _replay(tmp_path, log)
    assert result.exact, [d.describe() for d in result.divergences]
    assert result.replayed == 6 and result.reordered == 3  # mmap, munmap, mprotect
