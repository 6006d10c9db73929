"""`cartmem config`: what this process would use, secrets masked."""

from __future__ import annotations

import click

from app.cli._output import emit, json_option, table


@click.group()
def config() -> None:
    """Inspect the settings read from CARTMEM_* variables."""


@config.command()
@json_option
@click.pass_obj
def show(app, as_json: bool) -> None:
    """Print every setting and its value (passwords masked)."""
    shown = app.settings.redacted()
    emit(
        shown,
        as_json,
        lambda out: out.print(table("settings", ("variable", "value"), shown.items())),
    )
