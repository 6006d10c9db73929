"""`cartmem dev`: a real local Kafka broker and PostgreSQL for development."""

from __future__ import annotations

import click

from app.cli._output import emit, json_option


def _exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {name}={value}" for name, value in sorted(env.items()))


@click.group()
def dev() -> None:
    """Start or stop a local single-node Kafka broker and PostgreSQL on 127.0.0.1."""


@dev.command()
@json_option
@click.pass_obj
def up(app, as_json: bool) -> None:
    """Start both servers (or find the running ones) and print the environment to use.

    The first run downloads Kafka's jars with Maven (a few minutes); later runs take seconds.
    Use it as: eval "$(cartmem dev up)".
    """
    from app.devstack import DevStack  # imported late: it is only for developers

    stack = DevStack.up(app.settings.data_dir / "dev")
    env = stack.env()
    emit(env, as_json, lambda out: click.echo(_exports(env)))


@dev.command()
@json_option
@click.pass_obj
def down(app, as_json: bool) -> None:
    """Stop the servers `cartmem dev up` started and remove their data."""
    from app.devstack import DevStack

    DevStack.load(app.settings.data_dir / "dev").down()
    emit({"stopped": True}, as_json, lambda out: out.print("local Kafka and PostgreSQL stopped"))
