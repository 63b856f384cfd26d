"""Thread orders that take more than a move or two to find (issue 11, a CI flake of the churn
program): strace printed several overlapping calls' results in one order while they took
effect in another, so that the first call to leave needs every other one moved before it, in
an order that is not their exit order. The order search must find it, whatever the number of
calls to move, and say what it tried when there is none."""

from __future__ import annotations

import shutil
from pathlib import Path

import vmamodel as v
from vmamodel.mm import AddressSpace
from vmamodel.replay.recording import load_recording, recording_from_files
from vmamodel.replay.replay import FD_HANDLERS, ReplayResult, iter_calls, replay

RW = v.PROT_READ | v.PROT_WRITE
ANON = v.MAP_PRIVATE | v.MAP_ANONYMOUS
BASE = 0x7F0000000000
#: A real recording of tests/replay/programs/churn.c (ASLR on) whose four threads' arena
#: reservations (mmap of 128 MiB, MAP_NORESERVE) all entered before any left; strace printed
#: their results in the reverse of the order the kernel placed them (the lowest first).
CHURN_RECORDING = Path(__file__).with_name("data") / "churn-arenas-reversed.rec"


def _seed() -> str:
    mm = AddressSpace(mmap_base=BASE)
    mm.mmap(BASE - 0x100000, 0x1000, RW, ANON | v.MAP_FIXED)
    return mm.smaps()


def _placed(sizes: list[int]) -> list[int]:
    """Where the kernel puts mappings of these sizes, mapped one after the other."""
    seed = _seed()
    mm = AddressSpace.from_maps(
        "".join(line + "\n" for line in seed.splitlines() if "-" in line.split(" ")[0]),
        smaps=seed, mmap_base=BASE,
    )
    return [mm.mmap(0, size, RW, ANON) for size in sizes]


def _clones(*tids: int) -> str:
    return "".join(
        f"10 clone3({{flags=0x3d0f00, exit_signal=0, stack={BASE:#x}}} => "
        f"{{parent_tid=[{tid}]}}, 88) = {tid}\n" for tid in tids)


def _replay(tmp_path: Path, log: str) -> ReplayResult:
    (tmp_path / "t.log").write_text(log)
    (tmp_path / "s.smaps").write_text(_seed())
    rec = recording_from_files(tmp_path / "t.log", tmp_path / "s.smaps", pid=10,
                               traits={"mmap_base": BASE})
    return replay(rec)


def _report(result: ReplayResult) -> str:
    return "\n".join(d.report() for d in result.divergences)


def test_every_overlapping_call_moved_before_the_first_to_leave(tmp_path: Path) -> None:
    """Four threads enter mmap; the kernel places 13's, 12's, 11's, then 10's; strace prints
    10's result first: three calls move before it, in the reverse of their exit order."""
    sizes = {13: 0x4000, 12: 0x3000, 11: 0x2000, 10: 0x1000}
    placed = dict(zip(sizes, _placed(list(sizes.values())), strict=True))
    log = (
        _clones(11, 12, 13)
        + "".join(f"{tid} mmap(NULL, {sizes[tid]}, 0x3, 0x22, -1, 0 <unfinished ...>\n"
                  for tid in (10, 11, 12, 13))
        + "".join(f"{tid} <... mmap resumed>) = {placed[tid]:#x}\n" for tid in (10, 11, 12, 13))
    )
    result = _replay(tmp_path, log)
    assert result.exact, _report(result)
    assert result.replayed == 7 and result.reordered == 4


def test_calls_moved_before_it_keep_the_order_they_took_effect_in(tmp_path: Path) -> None:
    """Two calls move before the failing one, and between themselves too: 12's mapping was
    placed before 11's although strace printed 11's result first."""
    sizes = {12: 0x3000, 11: 0x2000, 10: 0x1000}
    placed = dict(zip(sizes, _placed(list(sizes.values())), strict=True))
    log = (
        _clones(11, 12)
        + "10 mmap(NULL, 4096, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + "11 mmap(NULL, 8192, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + "12 mmap(NULL, 12288, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + f"10 <... mmap resumed>) = {placed[10]:#x}\n"
        + f"11 <... mmap resumed>) = {placed[11]:#x}\n"
        + f"12 <... mmap resumed>) = {placed[12]:#x}\n"
    )
    result = _replay(tmp_path, log)
    assert result.exact, _report(result)
    assert result.reordered == 2  # 10 and 12 swap; 11 stays in the middle


def test_a_call_that_matched_is_moved_again_when_a_later_one_disagrees(
    tmp_path: Path,
) -> None:
    """11's munmap of x left first; 10's big mmap gets the same address whether the munmap
    took effect before it or not (it does not fit in x's range), 12's small one does not
    (it fits there): the search takes the munmap back after both, though every call
    matched up to 12's."""
    seed = _seed()
    mm = AddressSpace.from_maps(
        "".join(line + "\n" for line in seed.splitlines() if "-" in line.split(" ")[0]),
        smaps=seed, mmap_base=BASE)
    x = mm.mmap(0, 0x3000, RW, ANON)
    fence = mm.mmap(0, 0x1000, v.PROT_READ, ANON)  # keeps x's range a hole of its own
    big = mm.mmap(0, 0x10000, RW, ANON)
    small = mm.mmap(0, 0x2000, RW, ANON)
    assert small < big < fence < x
    log = (
        _clones(11, 12)
        + f"11 mmap(NULL, 12288, 0x3, 0x22, -1, 0) = {x:#x}\n"
        + f"11 mmap(NULL, 4096, 0x1, 0x22, -1, 0) = {fence:#x}\n"
        + f"11 munmap({x:#x}, 12288 <unfinished ...>\n"
        + "10 mmap(NULL, 65536, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + "12 mmap(NULL, 8192, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + "11 <... munmap resumed>) = 0\n"
        + f"10 <... mmap resumed>) = {big:#x}\n"
        + f"12 <... mmap resumed>) = {small:#x}\n"
    )
    result = _replay(tmp_path, log)
    assert result.exact, _report(result)
    assert result.reordered == 3  # big, small, then the munmap


def test_no_order_reports_what_was_tried(tmp_path: Path) -> None:
    """A result no order explains: the report names the overlapping calls' lines, how many
    orders gave another result, with the model's events and maps."""
    log = (
        _clones(11)
        + "10 mmap(NULL, 4096, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + "11 mmap(NULL, 8192, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + f"10 <... mmap resumed>) = {BASE - 0x200000:#x}\n"
        + f"11 <... mmap resumed>) = {BASE - 0x300000:#x}\n"
    )
    result = _replay(tmp_path, log)
    assert [d.kind for d in result.divergences] == ["result"]
    text = result.divergences[0].report()
    assert "no order of the 2 overlapping call(s) (lines 2..5)" in text, text
    assert "mismatching order(s) tried" in text
    assert "· Syscall name=mmap" in text and "model maps around the address" in text


def test_a_real_churn_recording_with_four_reversed_arenas(tmp_path: Path) -> None:
    rec_dir = shutil.copytree(CHURN_RECORDING, tmp_path / "rec")
    lines = (rec_dir / "trace.txt").read_text().splitlines()
    arenas = [line for line in lines if "mmap(NULL, 134217728, 0, 0x4022" in line]
    assert len(arenas) == 4 and all("<unfinished ...>" in line for line in arenas)
    rec = load_recording(rec_dir)
    result = replay(rec)
    assert result.exact, _report(result)
    assert result.final_compared and result.threads == 5 and result.reordered >= 4
    # every call counted once, wherever the search moved it
    assert result.replayed == sum(1 for c in iter_calls(rec) if c.name not in FD_HANDLERS)


def test_results_no_order_gives_together_end_in_a_divergence(tmp_path: Path) -> None:
    """Two threads' mmaps, both recorded at the one address a first mapping gets: each
    matches when it runs first, neither when it runs second. The search must not take an
    order in which a call that matched before the failing one is pushed after it unchecked:
    the replay would swap the two for ever (each swap fixes one and breaks the other)."""
    first = _placed([0x1000])[0]
    log = (
        _clones(11)
        + "10 mmap(NULL, 4096, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + "11 mmap(NULL, 4096, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        + f"10 <... mmap resumed>) = {first:#x}\n"
        + f"11 <... mmap resumed>) = {first:#x}\n"
    )
    result = _replay(tmp_path, log)
    assert [(d.kind, d.call.pid if d.call else None) for d in result.divergences] == [
        ("result", 11)]
    assert "no order of the 2 overlapping call(s)" in _report(result)
    assert result.replayed == 3 and result.reordered == 0
