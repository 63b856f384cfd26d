"""compare(): results, maps (with inode numbers normalised) and VmFlags of two runs."""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass

from test_scenario import FakeBackend, FakeSpace
from vmamodel import File, memfd_create
from vmamodel.scenario import ExecOptions, Outcome, Run, ScenarioError, execute, parse
from vmamodel.scenario.compare import (
    NAME_COLUMN_WIDTH,
    Difference,
    InodeNumbering,
    compare,
    maps_diff,
    normalise,
    render_maps_line,
    vmflags,
)

RW = "PROT_READ|PROT_WRITE"
ANON = "MAP_PRIVATE|MAP_ANONYMOUS"
HEAD = "100000000000-100000001000 rw-s 00000000 00:01 "


def run(text: str, backend: FakeBackend | None = None) -> Run:
    scenario = parse(textwrap.dedent(text), "c.vmas")
    return execute(scenario, backend or FakeBackend(), ExecOptions())


# ---------------------------------------------------------------------------------------------
# The maps line format


def test_render_pads_the_name_to_column_73() -> None:
    line = render_maps_line(HEAD, 1234, "/memfd:a (deleted)")
    assert line.index("/memfd:a") == NAME_COLUMN_WIDTH + 1 == 73
    assert line[:73].rstrip() == HEAD + "1234"
    assert render_maps_line(HEAD, 0, "") == HEAD + "0 "


def test_render_long_prefix_gets_one_extra_space() -> None:
    head = "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 "
    long_head = head + "9" * 20 + " "
    assert render_maps_line(head, int("9" * 20), "[vsyscall]") == long_head + " [vsyscall]"


def test_numbering_by_first_appearance() -> None:
    numbering = InodeNumbering()
    assert numbering.number("00:01", 5000) == 1
    assert numbering.number("00:01", 17) == 2
    assert numbering.number("00:01", 5000) == 1
    assert numbering.number("08:01", 5000) == 3  # an inode number is per device
    assert numbering.number("00:00", 0) == 0


def test_line_normalisation_recomputes_padding() -> None:
    numbering = InodeNumbering()
    raw = render_maps_line(HEAD, 123456789, "/memfd:a (deleted)")
    assert numbering.line(raw) == render_maps_line(HEAD, 1, "/memfd:a (deleted)")
    anon = "100000000000-100000001000 rw-p 00000000 00:00 0 "
    assert numbering.line(anon) == anon
    assert numbering.line("VmFlags: rd wr mr mw me ac ") == "VmFlags: rd wr mr mw me ac "


def test_malformed_padding_is_left_alone() -> None:
    numbering = InodeNumbering()
    bad = HEAD + "123456789 /memfd:a (deleted)"  # no padding at all
    assert numbering.line(bad) == bad
    assert numbering.line(render_maps_line(HEAD, 123456789, "/memfd:a (deleted)")) != bad


def test_text_keeps_newlines_and_other_smaps_lines() -> None:
    numbering = InodeNumbering()
    smaps = render_maps_line(HEAD, 99, "/dev/zero (deleted)") + "\nRss: 0 kB\nVmFlags: rd \n"
    assert numbering.text(smaps) == (
        render_maps_line(HEAD, 1, "/dev/zero (deleted)") + "\nRss: 0 kB\nVmFlags: rd \n")


def test_vmflags_by_range() -> None:
    smaps = (
        "100000000000-100000001000 rw-p 00000000 00:00 0 \nRss: 0 kB\nVmFlags: rd wr \n"
        "100000002000-100000003000 r--p 00000000 00:00 0 \nVmFlags: rd \n"
    )
    assert vmflags(smaps) == {
        "100000000000-100000001000": "VmFlags: rd wr ",
        "100000002000-100000003000": "VmFlags: rd ",
    }


# ---------------------------------------------------------------------------------------------
# Comparing runs

MEMFDS = f"""
    a = memfd_create("a", 64K)
    b = memfd_create("b", 64K)
    x = mmap(BASE, 4K, {RW}, MAP_SHARED, a, 0)
    y = mmap(BASE + 8K, 4K, {RW}, MAP_SHARED, b, 0)
    z = mmap(BASE + 16K, 4K, {RW}, MAP_SHARED, a, 4K)
    munmap(BASE, 32K)
    y = mmap(BASE + 8K, 4K, {RW}, MAP_SHARED, b, 0)
"""


def test_identical_runs_have_no_differences() -> None:
    assert compare(run(MEMFDS), run(MEMFDS)) == []


def test_inode_numbers_differ_by_nature() -> None:
    host = run(MEMFDS, FakeBackend(ino_base=777_000))
    model = run(MEMFDS)
    assert model.steps[-1].snapshots[0].maps != host.steps[-1].snapshots[0].maps
    assert compare(model, host) == []


@dataclass
class _OneInode(FakeBackend):
    """A broken backend that gives every memfd the same inode number."""

    def memfd_create(self, name: str, size: int) -> File:
        return memfd_create(name, size, ino=42)


def test_two_memfds_are_not_confused() -> None:
    differences = compare(run(MEMFDS), run(MEMFDS, _OneInode()))
    assert differences
    first = differences[0]
    assert (first.kind, first.line, first.space) == ("maps", 5, "main")
    # b's mapping is the second file in the model, but the first file again on the "host"
    assert "00:01 2" in first.model and "00:01 2" not in first.host


def test_identity_is_checked_across_steps() -> None:
    # After the munmap, the model maps b again as file 2, the host gives it a new inode.
    class Renumbering(FakeBackend):
        def memfd_create(self, name: str, size: int) -> File:
            return memfd_create(name, size, ino=ord(name[0]))

    class Fresh(FakeSpace):
        def mmap(self, addr: int, length: int, prot: int, flags: int,
                 file: File | None = None, offset: int = 0) -> int:
            if file is not None and len(self.calls) == 4:  # the last mmap
                file = dataclasses.replace(file, ino=file.ino + 1000)
            return super().mmap(addr, length, prot, flags, file, offset)

    backend = Renumbering()
    backend.new_space = lambda: Fresh()  # type: ignore[method-assign]
    differences = compare(run(MEMFDS), run(MEMFDS, backend))
    assert [d.line for d in differences] == [8]
    assert differences[0].kind == "maps"


def test_result_difference() -> None:
    model = run(f"mmap(BASE, 4K, {RW}, {ANON})")
    host = run(f"mmap(BASE, 4K, {RW}, {ANON})")
    failing = Outcome(None, 12)
    host.steps[0] = dataclasses.replace(host.steps[0], outcome=failing)
    differences = compare(model, host)
    assert differences == [Difference(0, 1, "result", "", "0x100000000000", "-1 ENOMEM")]
    assert differences[0].describe() == (
        "line 1: result: model '0x100000000000', host '-1 ENOMEM'")


def test_crash_always_differs() -> None:
    model = run("munmap(BASE, 4K)")
    host = run("munmap(BASE, 4K)")
    crash = Outcome(None, 0, crash="RuntimeError: boom")
    model.steps[0] = dataclasses.replace(model.steps[0], outcome=crash)
    assert [d.kind for d in compare(model, host)] == ["result"]


def test_maps_and_vmflags_differences() -> None:
    model = run(f"mmap(BASE, 4K, {RW}, {ANON})\nmaps")
    host = run(f"mmap(BASE, 4K, {RW}, {ANON})\nmaps")
    snap = host.steps[1].snapshots[0]
    assert snap.smaps is not None
    changed = dataclasses.replace(snap, smaps=snap.smaps.replace("VmFlags: rd wr ", "VmFlags: rd "))
    host.steps[1] = dataclasses.replace(host.steps[1], snapshots=(changed,))
    extra = dataclasses.replace(snap, maps=snap.maps + "100000005000-100000006000 r--p "
                                "00000000 00:00 0 \n")
    host.steps[0] = dataclasses.replace(host.steps[0], snapshots=(extra,))
    differences = compare(model, host)
    assert [(d.kind, d.line) for d in differences] == [("maps", 1), ("vmflags", 2)]
    assert "+100000005000-100000006000 r--p" in differences[0].detail
    assert differences[1].detail == "100000000000-100000001000"
    assert (differences[1].model, differences[1].host) == ("VmFlags: rd wr ", "VmFlags: rd ")


def test_missing_address_space() -> None:
    text = "c = fork()\nmaps"
    model, host = run(text), run(text)
    host.steps[1] = dataclasses.replace(host.steps[1], snapshots=host.steps[1].snapshots[:1])
    differences = compare(model, host)
    assert [(d.kind, d.space, d.host) for d in differences] == [
        ("maps", "c", "(no such address space)")]


def test_stopped_run_and_errors() -> None:
    text = f"a = mmap(BASE, 4K, {RW}, {ANON})\nmunmap(a, 4K)"
    model, host = run(text), run(text)
    host.steps = host.steps[:1]
    host.error = ScenarioError("c.vmas", 2, "'a' has no value")
    differences = compare(model, host)
    assert [(d.kind, d.line) for d in differences] == [("missing", 2), ("error", 2)]
    assert differences[0].detail == "the host stopped before this line"
    assert differences[1].host == "c.vmas:2: 'a' has no value"


def test_same_error_on_both_sides_is_no_difference() -> None:
    text = f"a = mmap(BASE, 0, {RW}, {ANON})\nmunmap(a, 4K)"
    model, host = run(text), run(text)
    assert model.error is not None
    assert compare(model, host) == []


def test_normalise_returns_a_copy() -> None:
    host = run(MEMFDS, FakeBackend(ino_base=5000))
    before = host.steps[3].snapshots[0].maps
    normal = normalise(host)
    assert host.steps[3].snapshots[0].maps == before
    assert "00:01 1 " in normal.steps[3].snapshots[0].maps


def test_maps_diff_is_unified() -> None:
    assert maps_diff("a\nb\n", "a\nc\n").splitlines()[-2:] == ["-b", "+c"]
