"""``vmamodel record``, ``replay`` and ``explain``: real programs on the model (docs/replay.md).

Exit status: replay 0 when every call and the final maps agree, 1 on a divergence or an
unsupported call; 2 on bad input (files, options) for every command; record passes on the
command's own exit status.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import click

from vmamodel.replay.explain import ExplainError, explain_source, render_explanation
from vmamodel.replay.record import RecordError, record
from vmamodel.replay.recording import (
    Recording,
    RecordingError,
    load_recording,
    recording_from_files,
)
from vmamodel.replay.replay import Divergence, ReplayResult, replay

EXIT_OK, EXIT_DIVERGED, EXIT_INPUT = 0, 1, 2


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(EXIT_INPUT)


@click.command("record", context_settings={"ignore_unknown_options": True})
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="The recording directory to write.")
@click.option("--no-randomize", is_flag=True,
              help="Run the command without address randomisation (setarch -R).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def record_command(out: str, no_randomize: bool, command: tuple[str, ...]) -> None:
    """Run COMMAND under strace and record its memory-management calls and its maps at
    start and exit into directory OUT (use `--` before the command)."""
    try:
        status = record(Path(out), list(command), no_randomize=no_randomize)
    except RecordError as exc:
        _fail(str(exc))
    click.echo(f"recorded {' '.join(command)} into {out} (exit status {status})", err=True)
    raise click.exceptions.Exit(status)


def _load(source: str, start_smaps: str | None, end_smaps: str | None,
          mountinfo: str | None, start_line: int, pid: int | None) -> Recording:
    path = Path(source)
    try:
        if path.is_dir():
            return load_recording(path)
        if start_smaps is None:
            _fail(f"{source}: a raw strace log needs --start-smaps")
        return recording_from_files(
            path, Path(start_smaps), Path(end_smaps) if end_smaps else None,
            Path(mountinfo) if mountinfo else None, start_line=start_line, pid=pid,
        )
    except RecordingError as exc:
        _fail(str(exc))


def _print_divergence(d: Divergence) -> None:
    click.echo(f"DIVERGENCE {d.report()}")


def _summary(result: ReplayResult) -> str:
    final = "final maps and VmFlags compared" if result.final_compared else "final maps not " \
        "compared"
    return (
        f"replayed {result.replayed} calls ({result.compared} results compared, "
        f"{result.skipped_interrupted} without a result) from {result.threads} task(s); "
        f"{result.forks} fork(s) replayed as fork-then-exit; {result.reordered} call(s) "
        f"reordered; {final}; {len(result.divergences)} divergence(s)"
    )


@click.command("replay")
@click.argument("source", type=click.Path(exists=True))
@click.option("--start-smaps", type=click.Path(exists=True, dir_okay=False),
              help="For a raw strace log: smaps (or maps) at its start.")
@click.option("--end-smaps", type=click.Path(exists=True, dir_okay=False),
              help="For a raw strace log: smaps (or maps) at its end.")
@click.option("--mountinfo", type=click.Path(exists=True, dir_okay=False),
              help="For a raw strace log: the recording machine's mountinfo.")
@click.option("--start-line", type=int, default=0, help="Replay the log after this line.")
@click.option("--pid", type=int, default=None, help="The process to replay (raw log).")
@click.option("--keep-going", is_flag=True, help="Go on after a divergence.")
def replay_command(source: str, start_smaps: str | None, end_smaps: str | None,
                   mountinfo: str | None, start_line: int, pid: int | None,
                   keep_going: bool) -> None:
    """Replay a recording (directory of `vmamodel record`, or a raw strace log with
    --start-smaps) on the model and compare every result and the final maps."""
    rec = _load(source, start_smaps, end_smaps, mountinfo, start_line, pid)
    try:
        result = replay(rec, keep_going=keep_going)
    except ValueError as exc:
        _fail(str(exc))
    for divergence in result.divergences:
        _print_divergence(divergence)
    for note in result.approximations:
        click.echo(f"approximate: {note}")
    click.echo(_summary(result))
    raise click.exceptions.Exit(EXIT_OK if result.exact else EXIT_DIVERGED)


@click.command("explain")
@click.argument("sources", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--top", type=int, default=10, show_default=True,
              help="How many reasons and runs to show.")
def explain_command(sources: tuple[str, ...], as_json: bool, top: int) -> None:
    """Why so many VMAs: PID (a live process), MAPS [SMAPS] (a snapshot) or OUT (a
    recording): VMA count against vm.max_map_count, VMAs by kind, and for every pair of
    touching VMAs kept apart the rule that does it."""
    try:
        explanation = explain_source(list(sources))
    except (ExplainError, RecordingError) as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(explanation.to_json(top), indent=2))
    else:
        click.echo(render_explanation(explanation, top))


COMMANDS = (record_command, replay_command, explain_command)
