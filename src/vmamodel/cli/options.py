"""Option parsers that more than one command uses."""

from __future__ import annotations

import click


def parse_address(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """An integer option written as in C: 0x100000000000, 17592186044416."""
    if value is None:
        return None
    try:
        return int(value.replace("_", ""), 0)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an integer") from None
