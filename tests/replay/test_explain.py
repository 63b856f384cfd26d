"""explain on a live process, on snapshots and on a recording."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from vmamodel.cli.main import cli
from vmamodel.replay.explain import explain_model, explain_source, explain_text
from vmamodel.replay.recording import load_recording
from vmamodel.replay.replay import replay, smaps_to_maps

from .programs_util import record_into

GUARDS = 300
CHILD = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
n = int(sys.argv[1])
base = libc.mmap(None, 2 * n * 4096, 3, 0x22, -1, 0)
ctypes.memset(base, 1, 4096)
for i in range(1, 2 * n, 2):
    libc.mprotect(base + i * 4096, 4096, 0)
print(hex(base), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def guarded() -> Iterator[tuple[int, int]]:
    """A process whose one mapping is cut by GUARDS PROT_NONE pages: (pid, base)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(GUARDS)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    base = int(child.stdout.readline(), 16)
    yield child.pid, base
    child.kill()
    child.wait()


def test_live_process(guarded: tuple[int, int]) -> None:
    pid, base = guarded
    exp = explain_source([str(pid)])
    assert exp.vma_count >= 2 * GUARDS
    assert exp.kinds["guard / PROT_NONE"] >= GUARDS
    reason = next(r for r in exp.reasons if "PROT_NONE guard" in r)
    # every guard has an rw- page on each side: 2 * GUARDS pairs, minus the last one whose
    # right side is whatever follows the mapping
    assert exp.reasons[reason] >= 2 * GUARDS - 1
    longest = max(exp.runs, key=lambda r: r.pairs)
    assert longest.reason == reason and longest.start == base and longest.pairs >= 2 * GUARDS - 1


def test_cli_json_and_text(guarded: tuple[int, int]) -> None:
    pid, _ = guarded
    runner = CliRunner()
    data = json.loads(runner.invoke(cli, ["explain", "--json", str(pid)]).output)
    assert data["vma_count"] >= 2 * GUARDS and data["max_map_count"] > data["vma_count"]
    assert data["headroom"] == data["max_map_count"] - data["vma_count"]
    assert data["largest_runs"][0]["vmas"] >= 2 * GUARDS
    text = runner.invoke(cli, ["explain", str(pid)]).output
    assert "% of vm.max_map_count" in text and "pairs apart: VmFlags differ" in text


def test_snapshot_files(guarded: tuple[int, int], tmp_path: Path) -> None:
    pid, _ = guarded
    maps = tmp_path / "maps"
    smaps = tmp_path / "smaps"
    maps.write_text(Path(f"/proc/{pid}/maps").read_text())
    smaps.write_text(Path(f"/proc/{pid}/smaps").read_text())
    both = explain_source([str(maps), str(smaps)])
    alone = explain_source([str(smaps)])  # an smaps text carries its maps
    assert both.reasons == alone.reasons
    without = explain_source([str(maps)])
    assert any("no smaps" in note for note in without.notes)
    assert without.vma_count == both.vma_count


def test_anon_vma_is_named_as_what_proc_cannot_show() -> None:
    line = "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n"
    line2 = "7f0000001000-7f0000002000 rw-p 00000000 00:00 0 \n"
    block = "Anonymous:             4 kB\nVmFlags: rd wr mr mw me ac \n"
    exp = explain_text(line + line2, line + block + line2 + block)
    assert list(exp.reasons) == ["anon_vma (not shown by /proc; both sides hold anonymous "
                                 "pages)"]


def test_recording_uses_the_model_and_agrees_with_proc(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    out = record_into(tmp_path / "rec", [str(binaries["churn"])])
    exp = explain_source([str(out)])
    assert exp.exact
    guards = next(r for r in exp.reasons if "PROT_NONE guard" in r)
    # the 16 guards churn.c cuts with mprotect, each the right end of one pair at least
    assert exp.made_by[guards]["mprotect"][0] >= 16
    rec = load_recording(out)
    result = replay(rec)
    assert result.exact and result.model is not None
    assert rec.end_smaps is not None
    proc = explain_text(smaps_to_maps(rec.end_smaps), rec.end_smaps)
    model = explain_model(result.model)
    flags = {r: n for r, n in proc.reasons.items() if r.startswith("VmFlags")}
    assert flags == {r: n for r, n in model.reasons.items() if r.startswith("VmFlags")}
    assert proc.touching_pairs == model.touching_pairs == exp.touching_pairs


def test_bad_maps_exit_2_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "maps"
    bad.write_text("7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \nnot a maps line\n")
    outcome = CliRunner().invoke(cli, ["explain", str(bad)])
    assert outcome.exit_code == 2 and f"{bad}:2:" in outcome.output
    outcome = CliRunner().invoke(cli, ["explain", "a", "b", "c"])
    assert outcome.exit_code == 2
