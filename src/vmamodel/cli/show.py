"""``vmamodel show``: pictures of a scenario's run, in the terminal or as one HTML page."""

from __future__ import annotations

import os

import click
from rich.console import Console

from vmamodel.cli.options import parse_address
from vmamodel.profiles import PROFILES
from vmamodel.scenario import Scenario, ScenarioError, parse_file
from vmamodel.show import film_of_scenario, print_film, to_html

EXIT_OK, EXIT_FAILED, EXIT_SCENARIO = 0, 1, 2
#: the width of the picture when it is not going to a terminal
PIPE_WIDTH = 100


def console_for(width: int | None) -> Console:
    """A console for the picture: the terminal's width, or ``PIPE_WIDTH`` in a pipe (plain text
    there; ``NO_COLOR`` is honoured by rich)."""
    probe = Console()
    if width is None and not probe.is_terminal:
        width = PIPE_WIDTH
    return Console(width=width, highlight=False)


def _fail(err: ScenarioError) -> None:
    click.echo(f"error: {err}", err=True)
    raise click.exceptions.Exit(EXIT_SCENARIO)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--html", "html_out", type=click.Path(dir_okay=False, writable=True),
              default=None, help="Write the page to this file instead of drawing in the terminal.")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default=None,
              help="Kernel profile of the model (overrides '#! profile:').")
@click.option("--base", default=None, callback=parse_address,
              help="Arena base (BASE); default 0x100000000000 or '#! base:'.")
@click.option("--width", type=int, default=None,
              help=f"Terminal width (default: the terminal's, or {PIPE_WIDTH} in a pipe).")
def show(file: str, html_out: str | None, profile: str | None, base: int | None,
         width: int | None) -> None:
    """Draw the run of a scenario FILE on the model: each step's VMAs, what changed and why."""
    scenario: Scenario | None = None
    try:
        scenario = parse_file(file)
    except ScenarioError as err:
        _fail(err)
    assert scenario is not None
    film, run = film_of_scenario(scenario, profile=profile, base=base)
    if html_out is not None:
        try:
            to_html(film, html_out)
        except OSError as err:
            raise click.BadParameter(f"cannot write {html_out}: {err.strerror}",
                                     param_hint="--html") from None
        click.echo(f"wrote {html_out} ({len(film.steps)} steps, "
                   f"{os.path.getsize(html_out) // 1024} KiB)")
    else:
        print_film(console_for(width), film)
    if run.error is not None:
        _fail(run.error)
    if run.failed_expectations or run.crashed:
        raise click.exceptions.Exit(EXIT_FAILED)
