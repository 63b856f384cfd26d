"""``vmamodel check TARGET``: find lifecycle bugs in a driver's mmap hooks.

Exit status: 0 when the driver has no finding of its own (the kernel's findings are shown but
do not count), 1 when it has, 2 on a usage error (an unknown TARGET, profile or option).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from vmamodel.campaign import Backend as CampaignBackend
from vmamodel.campaign import RayBackend, RayMissing
from vmamodel.check.api import Report, run_check
from vmamodel.check.findings import Finding, to_json, to_sarif
from vmamodel.check.targets import TargetError
from vmamodel.profiles import PROFILES

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
_ORIGIN_STYLE = {"driver": "bold red", "kernel": "yellow", "if-hook-fails": "cyan",
                 "model": "magenta"}


@click.command("check")
@click.argument("target")
@click.option("--profile", "profiles", multiple=True, type=click.Choice(list(PROFILES)),
              help="Kernel profile to explore (repeatable; default: all three).")
@click.option("--budget", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random call sequences per target and profile beyond the skeletons.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random sequences.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes of the local backend (default: the cores).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="Where the exploration runs: local processes, or a Ray cluster (the "
                   "executor of vmamodel fuzz; pip install 'vmamodel[ray]').")
@click.option("--address", default=None,
              help="Ray: address of an existing cluster (default: a local instance).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, help="Write the findings as JSON to this file ('-': stdout).")
@click.option("--sarif", "sarif_out", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, help="Write a SARIF 2.1.0 log to this file ('-': stdout).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write each finding's reproducer scenario into this directory.")
@click.option("-v", "--verbose", is_flag=True,
              help="Show the kernel's and if-hook-fails findings in full too.")
def check(target: str, profiles: tuple[str, ...], budget: int, seed: int, jobs: int | None,
          backend: str, address: str | None, json_out: str | None, sarif_out: str | None,
          out_dir: str | None, verbose: bool) -> None:
    """Explore the mapping lifecycle of TARGET's mmap hooks under each kernel profile.

    TARGET is a built-in device path (/dev/bad0, /dev/hpet, ...), 'all', or
    'package.module:factory', a function returning a fresh vmamodel File with fresh device
    state each time it is called.
    """
    machine = json_out == "-" or sarif_out == "-"
    console = Console(stderr=machine, highlight=False, width=None if _tty() else 200)
    started = time.monotonic()
    try:
        with _progress(console) as tick:
            report = run_check(target, profiles or None, budget, seed, jobs, tick,
                               _campaign_backend(backend, address))
    except (TargetError, RayMissing) as err:
        click.echo(f"error: {err}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None
    elapsed = time.monotonic() - started
    if out_dir is not None:
        _write_reproducers(report.findings, Path(out_dir))
    _print_report(console, report, elapsed, verbose)
    extra = {"runs": report.runs, "seconds": round(elapsed, 2),
             "skipped": [list(s) for s in report.skipped()]}
    _dump(json_out, to_json(report.findings, extra))
    _dump(sarif_out, to_sarif(report.findings))
    raise click.exceptions.Exit(EXIT_FINDINGS if report.driver_findings else EXIT_CLEAN)


def _campaign_backend(name: str, address: str | None) -> CampaignBackend | None:
    """None: the local pool of ``-j`` processes; "ray": Ray tasks (the checker needs no
    oracle node, so no custom resource is asked for)."""
    return RayBackend(address=address, resources={}) if name == "ray" else None


def _tty() -> bool:
    return Console().is_terminal


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal (on stderr); nothing otherwise."""
    if not Console(stderr=True).is_terminal:
        yield lambda done, total: None
        return
    bar = Progress(TextColumn("exploring"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    task = bar.add_task("explore", total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _dump(where: str | None, data: dict[str, Any]) -> None:
    if where is None:
        return
    text = json.dumps(data, indent=2)
    if where == "-":
        click.echo(text)
    else:
        Path(where).write_text(text + "\n")


def _file_name(index: int, finding: Finding) -> str:
    safe = "".join(c if c.isalnum() else "-" for c in f"{finding.kind}-{finding.hook}"
                   f"-{finding.rule}")
    return f"{index:02d}-{safe}.vmas"


def _write_reproducers(findings: list[Finding], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for index, finding in enumerate(findings, 1):
        (directory / _file_name(index, finding)).write_text(finding.reproducer)


def _print_report(console: Console, report: Report, elapsed: float, verbose: bool) -> None:
    findings = report.findings
    if findings:
        console.print(_summary_table(findings))
    for index, finding in enumerate(findings, 1):
        if finding.is_driver_bug or verbose:
            _print_finding(console, index, finding)
    for spec, profile, why in report.skipped():
        console.print(Text(f"{spec} [{profile}]: not explored - {why}", style="dim"))
    driver = len(report.driver_findings)
    others = len(findings) - driver
    style = "bold red" if driver else "bold green"
    console.print(Text(f"{driver} driver finding(s), {others} other(s) (kernel, if-hook-fails); "
                       f"{report.runs} runs in {elapsed:.1f} s", style=style))


def _summary_table(findings: list[Finding]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("#", "origin", "kind", "hook", "rule", "target", "profiles", "runs"):
        table.add_column(column, overflow="fold")
    for index, f in enumerate(findings, 1):
        table.add_row(str(index), Text(f.origin, style=_ORIGIN_STYLE.get(f.origin, "")),
                      f.kind, f.hook, f.rule, f.target, ",".join(f.profiles), str(f.count))
    return table


def _print_finding(console: Console, index: int, f: Finding) -> None:
    style = _ORIGIN_STYLE.get(f.origin, "")
    console.print(Text(f"#{index} [{f.origin}] {f.kind} in {f.hook} - {f.target} "
                       f"({', '.join(f.profiles)}; {f.count} runs)", style=style))
    console.print(Text(f"  rule: {f.sentence}"))
    console.print(Text(f"  state: {f.detail}"))
    console.print(Text(f"  paths: {'; '.join(f.paths[:3])}"))
    mark = "replays to the same finding" if f.reproduced else "DOES NOT replay"
    console.print(Text(f"  reproducer ({mark}, vmamodel run FILE):", style="dim"))
    for line in f.reproducer.splitlines():
        console.print(Text(f"    {line}"))
    console.print(Text("  trace:", style="dim"))
    for line in f.trace:
        console.print(Text(f"    · {line}", style="dim"))
    console.print()
