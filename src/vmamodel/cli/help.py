"""``vmamodel help [TOPIC]``: reference text that does not fit in ``--help``."""

from __future__ import annotations

import inspect

import click

import vmamodel.scenario

TOPICS = {
    "scenario": "The scenario language of 'vmamodel run' and 'vmamodel diff'.",
    "exit": "The exit statuses of every command.",
}

EXIT_STATUSES = """\
Exit status of every vmamodel command:

  0    everything matched (run: every expectation met; diff: model and host agree)
  1    a difference (diff), a failed expectation, or a crash of a backend
  2    a mistake in the input: the scenario (file:line: message), an option
       (click's usage error), a file that cannot be read or is not UTF-8
  130  interrupted (Ctrl-C)
  141  the output pipe was closed (e.g. '| head'): the command stops quietly
"""


@click.command(name="help")
@click.argument("topic", required=False, type=click.Choice(sorted(TOPICS)))
def help_command(topic: str | None) -> None:
    """Reference for TOPIC: 'scenario' (the language) or 'exit' (exit statuses)."""
    if topic is None:
        for name, summary in TOPICS.items():
            click.echo(f"vmamodel help {name:<10} {summary}")
    elif topic == "scenario":
        click.echo(inspect.getdoc(vmamodel.scenario) or "")
    else:
        click.echo(EXIT_STATUSES, nl=False)
