"""A recording as the replay and explain read it: the strace log, the snapshots, the machine.

:func:`load_recording` reads a ``vmamodel record`` directory; :func:`recording_from_files`
takes a raw strace log and smaps snapshots instead. Every problem with the input is a
:class:`RecordingError` naming the file (and line).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmamodel.host.traits import parse_mountinfo
from vmamodel.replay.step import FaultEvent, fault_events, named
from vmamodel.replay.strace import StraceError, StraceLog, parse_strace
from vmamodel.unmapped_area import ShmemHuge

__all__ = [
    "Recording",
    "RecordingError",
    "collector_paused",
    "load_recording",
    "recording_from_files",
]


class RecordingError(ValueError):
    """A recording that cannot be read; the message names the file."""


@dataclass(slots=True)
class Recording:
    """What a replay needs. ``start_line``/``end_line``: the log lines of the start and end
    markers (0: from the first line; None: to the last). ``traits``: keyword arguments for
    the model (the recording machine's kernel). ``fs_of``: device -> filesystem type."""

    source: str
    log: StraceLog
    start_smaps: str
    end_smaps: str | None
    traits: dict[str, Any] = field(default_factory=dict)
    fs_of: dict[tuple[int, int], str] = field(default_factory=dict)
    root_pid: int | None = None
    start_line: int = 0
    end_line: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: perf's events per thread, in order: ("enter", NR) or ("fault", address, write,
    #: kernel-mode); None when the recording has no faults
    faults: dict[int, list[FaultEvent]] | None = None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a recording is read or planned (then
    as it was). Those build an object a call (60,000 for replay_bench.c's log) and no
    reference cycle, so an automatic collection frees nothing but walks them all, over and
    over as they pile up: a third of the time of reading that recording. Cycles made
    meanwhile (none are expected) are collected once it runs again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise RecordingError(f"{path}: {exc.strerror}") from None


def _parse_log(path: Path) -> StraceLog:
    try:
        with path.open(encoding="utf-8", errors="surrogateescape") as lines:
            return parse_strace(lines, source=str(path))
    except StraceError as exc:
        raise RecordingError(str(exc)) from None
    except OSError as exc:
        raise RecordingError(f"{path}: {exc.strerror}") from None


def _traits(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    traits = dict(meta.get("traits") or {})
    huge = traits.get("shmem_huge")
    if isinstance(huge, dict):
        try:
            traits["shmem_huge"] = ShmemHuge(**huge)
        except TypeError:
            raise RecordingError(f"{path}: bad shmem_huge in traits: {huge!r}") from None
    if "rlimit_stack" in meta:
        traits["rlimit_stack"] = int(meta["rlimit_stack"])
    return traits


_OPENAT = frozenset({"openat"})


def _marker_line(log: StraceLog, out_dir: str, name: str) -> tuple[int | None, int | None]:
    """(line, pid) of the helper's openat of ``out_dir/name``, or (None, None)."""
    wanted = f'"{out_dir}/{name}"'
    for call in named(log.calls, _OPENAT):
        if len(call.args) > 1 and call.args[1] == wanted:
            return call.line, call.pid
    return None, None


def parse_faults(text: str, source: str) -> dict[int, list[FaultEvent]]:
    """faults.txt: ``TID enter NR`` and ``TID fault ADDRESS ERROR_CODE [k]`` lines
    (:func:`vmamodel.replay.step.fault_events`); RecordingError names the line it cannot
    read."""
    try:
        return fault_events(text, source)
    except ValueError as exc:
        raise RecordingError(str(exc)) from None


def load_recording(directory: Path) -> Recording:
    """Read a ``vmamodel record`` directory."""
    with collector_paused():
        return _load_recording(directory)


def _load_recording(directory: Path) -> Recording:
    if not directory.is_dir():
        raise RecordingError(f"{directory}: not a recording directory")
    meta_path = directory / "meta.json"
    try:
        meta = json.loads(_read(meta_path))
    except json.JSONDecodeError as exc:
        raise RecordingError(f"{meta_path}:{exc.lineno}: {exc.msg}") from None
    if not isinstance(meta, dict):
        raise RecordingError(f"{meta_path}: not a JSON object")
    log = _parse_log(directory / "trace.txt")
    out_dir = str(meta.get("dir", directory.resolve()))
    start_line, root = _marker_line(log, out_dir, "start.smaps")
    if start_line is None:
        raise RecordingError(f"{directory / 'trace.txt'}: no start marker (the helper's "
                             f"openat of {out_dir}/start.smaps)")
    end_line, _ = _marker_line(log, out_dir, "end.smaps")
    end_path = directory / "end.smaps"
    mountinfo = directory / "mountinfo"
    try:
        fs_of = parse_mountinfo(_read(mountinfo), str(mountinfo)) if mountinfo.exists() else {}
    except ValueError as exc:
        raise RecordingError(str(exc)) from None
    faults_path = directory / "faults.txt"
    faults = None
    if meta.get("faults") and faults_path.exists():
        faults = parse_faults(_read(faults_path), str(faults_path))
    return Recording(
        source=str(directory),
        faults=faults,
        log=log,
        start_smaps=_read(directory / "start.smaps"),
        end_smaps=_read(end_path) if end_path.exists() else None,
        traits=_traits(meta, meta_path),
        fs_of=fs_of,
        root_pid=root,
        start_line=start_line,
        end_line=end_line,
        meta=meta,
    )


def recording_from_files(
    trace: Path,
    start_smaps: Path,
    end_smaps: Path | None = None,
    mountinfo: Path | None = None,
    *,
    start_line: int = 0,
    pid: int | None = None,
    traits: dict[str, Any] | None = None,
) -> Recording:
    """A raw strace log (``-f -X raw -y``; mremap raw for its fifth argument) whose calls
    from ``start_line`` on follow the ``start_smaps`` snapshot."""
    with collector_paused():
        log = _parse_log(trace)
    fs_of: dict[tuple[int, int], str] = {}
    if mountinfo is not None:
        try:
            fs_of = parse_mountinfo(_read(mountinfo), str(mountinfo))
        except ValueError as exc:
            raise RecordingError(str(exc)) from None
    root = pid
    if root is None:
        first = next((c for c in log.calls if c.line > start_line), None)
        root = first.pid if first is not None else 0
    return Recording(
        source=str(trace),
        log=log,
        start_smaps=_read(start_smaps),
        end_smaps=_read(end_smaps) if end_smaps is not None else None,
        traits=dict(traits or {}),
        fs_of=fs_of,
        root_pid=root,
        start_line=start_line,
    )
