"""The model's fidelity features in a replay: KSM prctls, mbind, set_mempolicy_home_node,
io_setup/io_destroy and map_shadow_stack, parsed from hand-written logs and from a real
program recorded here."""

from __future__ import annotations

from pathlib import Path

import vmamodel as v
from vmamodel.mm import AddressSpace
from vmamodel.replay.recording import load_recording, recording_from_files
from vmamodel.replay.replay import ReplayResult, replay
from vmamodel.replay.strace import arg_int, parse_strace

from .programs_util import record_into

RW = v.PROT_READ | v.PROT_WRITE
ANON = v.MAP_PRIVATE | v.MAP_ANONYMOUS
TRAITS = {"mmap_base": 0x7F0000000000, "numa_nodes": 1}


def _seed() -> str:
    mm = AddressSpace(mmap_base=0x7F0000000000)
    mm.mmap(0x7EFFFFF00000, 0x1000, RW, ANON | v.MAP_FIXED)
    return mm.smaps()


def _model() -> AddressSpace:
    """A model like the replay's: seeded from the same snapshot."""
    maps = "".join(line + "\n" for line in _seed().splitlines() if "-" in line.split(" ")[0])
    return AddressSpace.from_maps(maps, smaps=_seed(), **TRAITS)  # type: ignore[arg-type]


def _replay(tmp_path: Path, log: str) -> ReplayResult:
    (tmp_path / "t.log").write_text(log)
    (tmp_path / "s.smaps").write_text(_seed())
    rec = recording_from_files(tmp_path / "t.log", tmp_path / "s.smaps", pid=10,
                               traits=dict(TRAITS))
    return replay(rec)


def _vmflags(result: ReplayResult) -> list[str]:
    assert result.model is not None
    return [line for line in result.model.smaps().splitlines() if line.startswith("VmFlags")]


def test_ksm_prctls_mark_mappings_mergeable(tmp_path: Path) -> None:
    addr = _model().mmap(0, 0x4000, RW, ANON)
    log = (
        "10 prctl(0x43, 0x1, 0, 0, 0) = 0\n"
        "10 prctl(0x44, 0, 0, 0, 0) = 1\n"
        f"10 mmap(NULL, 16384, 0x3, 0x22, -1, 0) = {addr:#x}\n"
        f"10 madvise({addr:#x}, 4096, 0xd) = 0\n"  # MADV_UNMERGEABLE: a VMA of its own
    )
    (call,) = [c for c in parse_strace(log.splitlines()).calls if c.args[0] == "0x44"]
    assert call.retval == 1
    result = _replay(tmp_path, log)
    assert result.exact, [d.describe() for d in result.divergences]
    assert result.compared == 4
    assert [" mg" in f for f in _vmflags(result)] == [True, False, True]


def test_a_wrong_ksm_answer_is_a_divergence(tmp_path: Path) -> None:
    result = _replay(tmp_path, "10 prctl(0x44, 0, 0, 0, 0) = 1\n")
    assert [(d.kind, d.model) for d in result.divergences] == [("result", "0")]


def test_mbind_and_home_node(tmp_path: Path) -> None:
    mm = _model()
    addr = mm.mmap(0, 0x4000, RW, ANON)
    log = (
        f"10 mmap(NULL, 16384, 0x3, 0x22, -1, 0) = {addr:#x}\n"
        f"10 mbind({addr + 0x1000:#x}, 4096, 0x2, [0x00000000000001], 64, 0) = 0\n"
        f"10 set_mempolicy_home_node({addr + 0x1000:#x}, 4096, 0, 0) = 0\n"
        f"10 set_mempolicy_home_node({addr + 0x2000:#x}, 8192, 0, 0) = -1 ENOENT (No such "
        "file or directory)\n"
        f"10 mbind({addr:#x}, 4096, 0x2, [0x00000000000002], 64, 0) = -1 EINVAL (Invalid "
        "argument)\n"
    )
    (call,) = parse_strace(log.splitlines()[1:2]).calls
    assert call.args[3] == "[0x00000000000001]"
    result = _replay(tmp_path, log)
    assert result.exact, [d.describe() for d in result.divergences]
    assert result.compared == 5
    assert len(_vmflags(result)) == 4  # the seed, and the mapping split around the policy


def test_aio_ring_and_shadow_stack(tmp_path: Path) -> None:
    ring = _model().io_setup(32)
    log = (
        f"10 io_setup(32, [{ring:#x}]) = 0\n"
        f"10 io_destroy({ring:#x}) = 0\n"
        "10 map_shadow_stack(0, 65536, 0) = -1 ENOSYS (Function not implemented)\n"
    )
    result = _replay(tmp_path, log)
    assert result.exact, [d.describe() for d in result.divergences]
    assert result.compared == 3
    wrong = _replay(tmp_path, log.replace(f"[{ring:#x}]", f"[{ring + 0x1000:#x}]"))
    assert [(d.kind, d.model) for d in wrong.divergences] == [("result", hex(ring))]


def test_a_real_program_with_these_calls_replays_exactly(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    out = record_into(tmp_path / "rec", [str(binaries["fidelity"])])
    trace = (out / "trace.txt").read_text()
    for name in ("prctl(0x43", "mbind(", "set_mempolicy_home_node(", "io_setup(",
                 "io_destroy("):
        assert name in trace
    result = replay(load_recording(out))
    assert result.exact, [d.describe() for d in result.divergences]
    assert result.final_compared and result.compared >= 9


def test_sysv_shm_ids_are_mapped_to_the_models(tmp_path: Path) -> None:
    mm = _model()
    shmid = mm.shmget(0, 8192, 0o1000 | 0o600)
    addr = mm.shmat(shmid, 0, 0)
    log = (
        "10 shmget(0, 8192, 0x200|0600) = 1245232\n"
        f"10 shmat(1245232, NULL, 0) = {addr:#x}\n"
        "10 shmctl(1245232, 0x2, 0x7ffc0000) = 0\n"  # IPC_STAT: nothing to replay
        "10 shmctl(1245232, 0, NULL) = 0\n"
        f"10 shmdt({addr:#x}) = 0\n"
        "10 shmat(1245232, NULL, 0) = -1 EINVAL (Invalid argument)\n"  # removed, detached
    )
    (call,) = parse_strace(log.splitlines()[:1]).calls
    assert arg_int(call.args[2]) == 0o1000 | 0o600
    result = _replay(tmp_path, log)
    assert result.exact, [d.describe() for d in result.divergences]
    assert result.compared == 6
    assert result.model is not None and "SYSV" not in result.model.maps()


def test_shmat_of_a_segment_made_elsewhere_is_unsupported(tmp_path: Path) -> None:
    result = _replay(tmp_path, "10 shmat(77, NULL, 0) = 0x7f0000000000\n")
    assert [d.kind for d in result.divergences] == ["unsupported"]
    assert "shm segment 77 whose shmget was not recorded" in result.divergences[0].model


def test_a_real_shm_program_replays_exactly(binaries: dict[str, Path], tmp_path: Path) -> None:
    out = record_into(tmp_path / "rec", [str(binaries["shm"])])
    trace = (out / "trace.txt").read_text()
    assert " shmget(" in trace and " shmat(" in trace and " shmctl(" in trace
    result = replay(load_recording(out))
    assert result.exact, [d.describe() for d in result.divergences]
    assert result.final_compared
    end = (out / "end.smaps").read_text()
    assert "/SYSV00000000 (deleted)" in end
