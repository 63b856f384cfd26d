"""The replay's fast paths give what the general ones give: a repeated log line, the common
calls run by a native entry call, the boundaries worked out from a pass's trail, the
collector paused while a recording is read."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

import vmamodel as v
from vmamodel.mm import AddressSpace
from vmamodel.replay.recording import collector_paused, recording_from_files
from vmamodel.replay.replay import Replayer, replay
from vmamodel.replay.strace import parse_strace

RW = v.PROT_READ | v.PROT_WRITE
ANON = v.MAP_PRIVATE | v.MAP_ANONYMOUS
BASE = 0x7F0000000000


def test_repeated_lines_give_calls_of_their_own() -> None:
    lines = [
        "10 munmap(0x7f0000001000, 4096) = 0\n",
        "10 munmap(0x7f0000001000, 4096) = -1 EINVAL (Invalid argument)\n",
        "[pid 11] mprotect(0x7f0000001000, 4096, 0x1) = 0\n",
        "mmap(NULL, 4096, 0x3, 0x22, -1, 0) = 0x7f0000002000\n",
    ]
    log = parse_strace(lines * 3, default_pid=7)
    assert len(log.calls) == 12
    assert len({id(call) for call in log.calls}) == 12
    for number, call in enumerate(log.calls, start=1):
        alone = parse_strace([lines[(number - 1) % 4]], default_pid=7).calls[0]
        assert (call.line, call.end_line) == (number, number)
        assert call._fields()[:6] == alone._fields()[:6]  # pid ... ret_path
        assert (call.raw, call.ints) == (alone.raw, alone.ints)
    assert [c.pid for c in log.calls[:4]] == [10, 10, 11, 7]
    assert log.calls[5].error == "EINVAL" and log.calls[4].error is None


def _seed() -> str:
    mm = AddressSpace(mmap_base=BASE)
    mm.mmap(BASE - 0x100000, 0x1000, RW, ANON | v.MAP_FIXED)
    return mm.smaps()


def _first_address() -> int:
    """Where the kernel (and the model) put an 8 KiB anonymous mapping after the seed."""
    mm = AddressSpace.from_maps(
        "".join(line + "\n" for line in _seed().splitlines() if "-" in line.split(" ")[0]),
        smaps=_seed(), mmap_base=BASE,
    )
    return mm.mmap(0, 0x2000, RW, ANON)


def _replayer(tmp_path: Path, log: str, keep_going: bool = False) -> Replayer:
    (tmp_path / "t.log").write_text(log)
    (tmp_path / "s.smaps").write_text(_seed())
    rec = recording_from_files(tmp_path / "t.log", tmp_path / "s.smaps", pid=10,
                               traits={"mmap_base": BASE})
    return Replayer(rec, keep_going=keep_going)


def test_edges_are_the_last_call_at_each_boundary(tmp_path: Path) -> None:
    a = _first_address()
    replayer = _replayer(tmp_path, (
        f"10 mmap(NULL, 8192, 0x3, 0x22, -1, 0) = {a:#x}\n"
        f"10 munmap({a:#x}, 4096) = 0\n"
        "10 munmap(0x1001, 4096) = -1 EINVAL (Invalid argument)\n"
        f"10 mprotect({a + 0x1000:#x}, 4096, 0x1) = 0\n"
    ))
    result = replayer.run()
    assert result.exact, [d.describe() for d in result.divergences]
    # the failed munmap drew nothing; each boundary keeps the last call that drew it, in
    # the order the boundaries were first drawn
    assert [(address, call.line) for address, call in result.edges.items()] == [
        (a, 2), (a + 0x2000, 4), (a + 0x1000, 4)]
    assert len(result.edges) == 3 and result.edges[a].name == "munmap"


def test_edges_of_a_differing_call_are_the_models(tmp_path: Path) -> None:
    a = _first_address()
    wrong = a - 0x10000
    result = _replayer(tmp_path, (
        f"10 mmap(NULL, 8192, 0x3, 0x22, -1, 0) = {wrong:#x}\n"
        f"10 munmap({a:#x}, 8192) = 0\n"
    ), keep_going=True).run()
    assert [d.kind for d in result.divergences] == ["result"]
    assert [(address, call.line) for address, call in result.edges.items()] == [
        (a, 2), (a + 0x2000, 2)]


class _Subclass(AddressSpace):
    """A model class of its own: the replay calls its entry points (no native shortcut)."""

    __slots__ = ()
    calls = 0

    def munmap(self, addr: int, length: int) -> None:  # type: ignore[override]
        _Subclass.calls += 1
        super().munmap(addr, length)


def test_a_model_subclass_gets_its_own_entry_points(tmp_path: Path) -> None:
    a = _first_address()
    replayer = _replayer(tmp_path, (
        f"10 mmap(NULL, 8192, 0x3, 0x22, -1, 0) = {a:#x}\n"
        f"10 munmap({a:#x}, 4096) = 0\n"
    ))
    run = replayer._fresh()
    run.model.__class__ = _Subclass
    _Subclass.calls = 0
    assert replayer.stepper.advance(run, replayer.order, 0) == (2, None, None)
    assert _Subclass.calls == 1
    assert replayer.stepper.replayed == 2


def test_a_patched_address_space_gets_its_patched_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tool that replaces AddressSpace's methods on the class (the fuzz's planted bug)
    is called by the replay, not bypassed by the native shortcut."""
    a = _first_address()
    replayer = _replayer(tmp_path, (
        f"10 mmap(NULL, 8192, 0x3, 0x22, -1, 0) = {a:#x}\n"
        f"10 munmap({a:#x}, 4096) = 0\n"
    ))
    calls: list[int] = []
    entry = AddressSpace.munmap

    def patched(self: AddressSpace, addr: int, length: int) -> None:
        calls.append(addr)
        entry(self, addr, length)

    monkeypatch.setattr(AddressSpace, "munmap", patched)
    run = replayer._fresh()
    assert replayer.stepper.advance(run, replayer.order, 0) == (2, None, None)
    assert calls == [a]


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_paused_restores_it(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() == enabled
        with pytest.raises(ValueError), collector_paused():
            raise ValueError("bad input")
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_replay_of_a_log_read_twice_is_the_same(tmp_path: Path) -> None:
    a = _first_address()
    log = (f"10 mmap(NULL, 8192, 0x3, 0x22, -1, 0) = {a:#x}\n"
           f"10 mprotect({a:#x}, 4096, 0x1) = 0\n"
           f"10 munmap({a:#x}, 8192) = 0\n")
    (tmp_path / "t.log").write_text(log)
    (tmp_path / "s.smaps").write_text(_seed())
    rec = recording_from_files(tmp_path / "t.log", tmp_path / "s.smaps", pid=10,
                               traits={"mmap_base": BASE})
    first, second = replay(rec), replay(rec)
    assert first.exact and second.exact
    assert first.replayed == second.replayed == 3
    assert dict(first.edges) == dict(second.edges)
