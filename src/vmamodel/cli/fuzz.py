"""``vmamodel fuzz``: a campaign of random call sequences on the model and on the host kernel.

Exit status: 0 when this run found no difference, 1 when it found one (each shrunk to a
scenario under DIR/failures/), 2 on a bad option or a campaign that cannot continue, 130 when
interrupted (Ctrl-C; the campaign resumes where it stopped).
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from vmamodel.campaign import Backend, LocalBackend, RayBackend, RayMissing
from vmamodel.campaign.ray_backend import ORACLE_RESOURCE
from vmamodel.fuzz.run import Budget, RunStats, planned_calls, run_campaign
from vmamodel.fuzz.shard import GENERATOR_VERSION, FuzzWork, host_traits, kernel_release
from vmamodel.fuzz.store import Campaign, CampaignError

EXIT_OK, EXIT_DIFFERENT, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([smh]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``600``, ``90s``, ``10m``, ``1.5h`` -> seconds."""
    if value is None:
        return None
    match = _DURATION_RE.fullmatch(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not a duration (600, 90s, 10m, 1.5h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _seed_range(ctx: click.Context, param: click.Parameter,
                value: str | None) -> tuple[int, int] | None:
    """``START:STOP`` (STOP excluded)."""
    if value is None:
        return None
    try:
        start, stop = (int(part) for part in value.split(":"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not START:STOP") from None
    if not 0 <= start < stop:
        raise click.BadParameter(f"{value!r}: need 0 <= START < STOP")
    return start, stop


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(EXIT_USAGE)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--calls", type=click.IntRange(1), default=None,
              help="Budget: calls (whole sequences). Default 10000 when no --time/--seeds.")
@click.option("--time", "seconds", default=None, callback=_duration,
              help="Budget: wall time (600, 90s, 10m, 1.5h).")
@click.option("--seeds", default=None, callback=_seed_range,
              help="Run exactly the seeds START:STOP (STOP excluded).")
@click.option("--first-seed", type=click.IntRange(0), default=0, show_default=True,
              help="Where --calls and --time start counting seeds.")
@click.option("--length", type=click.IntRange(1), default=100, show_default=True,
              help="Calls per sequence (fixed for a campaign).")
@click.option("--shard-size", type=click.IntRange(1), default=8, show_default=True,
              help="Seeds per shard (fixed for a campaign).")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Worker processes of the local backend (one oracle child each).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local",
              show_default=True)
@click.option("--address", default=None,
              help="Ray: address of an existing cluster (default: a local instance).")
@click.option("--allow-mixed-kernels", is_flag=True,
              help="Accept results from kernels other than the campaign's.")
@click.option("--no-shrink", is_flag=True, help="Record differences without shrinking them.")
@click.option("--no-kernel", is_flag=True,
              help="Run the model alone (no oracle, no comparison): to time the model.")
def fuzz(directory: str, calls: int | None, seconds: float | None,
         seeds: tuple[int, int] | None, first_seed: int, length: int, shard_size: int,
         jobs: int, backend: str, address: str | None, allow_mixed_kernels: bool,
         no_shrink: bool, no_kernel: bool) -> None:
    """Run random call sequences on the model and on the host kernel, compare them after every
    call, and shrink each difference to a scenario file under DIRECTORY/failures/.

    DIRECTORY keeps the campaign: run the same command again to resume it (seeds already
    recorded are not run again).
    """
    if calls is None and seconds is None and seeds is None:
        calls = 10_000
    kernel = kernel_release()
    try:
        campaign = Campaign.open(directory, length=length, shard_size=shard_size,
                                 generator=GENERATOR_VERSION, kernel=kernel,
                                 traits=host_traits(), allow_mixed_kernels=allow_mixed_kernels)
    except CampaignError as err:
        _fail(str(err))
    budget = Budget(calls=calls, seconds=seconds, seeds=seeds, first_seed=first_seed)
    template = FuzzWork((), length, str(campaign.meta["kernel"]), allow_mixed_kernels,
                        shrink=not no_shrink, host=not no_kernel)
    runner: Backend = LocalBackend(jobs=jobs) if backend == "local" \
        else RayBackend(address=address, resources={ORACLE_RESOURCE: 1})
    console = Console(stderr=True)
    try:
        stats = _run_with_progress(console, campaign, budget, template, runner)
    except (CampaignError, RayMissing) as err:
        _fail(str(err))
    except KeyboardInterrupt:
        click.echo(f"interrupted: the seeds recorded so far stay in {directory}; run the same "
                   "command again to resume", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    _summary(Console(highlight=False, soft_wrap=True), campaign, stats, backend, jobs)
    raise click.exceptions.Exit(EXIT_DIFFERENT if stats.diffs else EXIT_OK)


def _run_with_progress(console: Console, campaign: Campaign, budget: Budget,
                       template: FuzzWork, runner: Backend) -> RunStats:
    total_calls = planned_calls(campaign, budget)
    by_time = budget.seconds is not None and (total_calls is None or budget.calls is None)
    progress = Progress(
        TextColumn("[bold]fuzz"), BarColumn(), TextColumn("{task.fields[calls]:>9,} calls"),
        TextColumn("{task.fields[rate]:>7.0f} calls/s"),
        TextColumn("[red]{task.fields[diffs]} differences"), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    )
    total = budget.seconds if by_time else float(total_calls or 0)
    with progress:
        task = progress.add_task("fuzz", total=total, calls=0, rate=0.0, diffs=0)

        def update(stats: RunStats, record: dict[str, Any]) -> None:
            _advance(progress, task, stats, by_time)

        stats = run_campaign(campaign, budget, template, runner, on_record=update)
        _advance(progress, task, stats, by_time)
    return stats


def _advance(progress: Progress, task: TaskID, stats: RunStats, by_time: bool) -> None:
    done = stats.seconds if by_time else stats.calls
    progress.update(task, completed=done, calls=stats.calls, rate=stats.rate,
                    diffs=len(stats.diffs))


def _summary(console: Console, campaign: Campaign, stats: RunStats, backend: str,
             jobs: int) -> None:
    workers = f"{jobs} local worker{'s' if jobs > 1 else ''}" if backend == "local" else "Ray"
    console.print(Text(
        f"this run: {stats.seeds:,} sequences, {stats.calls:,} calls in {stats.seconds:.1f} s "
        f"({stats.rate:,.0f} calls/s, {workers}), {len(stats.diffs)} differences, "
        f"{stats.invalid} sequences stopped by a refused call", style="bold"))
    for record, scenario in stats.diffs:
        divergence = record.get("shrunk", {}).get("divergence") or record["divergence"]
        calls = record.get("shrunk", {}).get("calls")
        shrunk = f" (shrunk to {calls} calls)" if calls is not None else ""
        console.print(Text(
            f"  ≠ seed {record['seed']}: {divergence['func']} {divergence['kind']}{shrunk}"
            f"{': ' + str(scenario) if scenario else ''}", style="red"))
    for key, error in stats.failed_shards:
        last = error.strip().splitlines()[-1] if error.strip() else "failed"
        console.print(Text(f"  shard {key} failed: {last}", style="bold red"))
    totals = campaign.totals()
    console.print(Text(
        f"campaign {campaign.path}: {totals.seeds:,} sequences, {totals.calls:,} calls, "
        f"{len(totals.diffs)} differences; kernel {', '.join(sorted(totals.kernels)) or '-'}",
        style="green" if not totals.diffs else "yellow"))
