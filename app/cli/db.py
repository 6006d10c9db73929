"""`cartmem db`: schema migrations through Alembic."""

from __future__ import annotations

import click

from app import db as database
from app.cli._output import emit, json_option


@click.group()
def db() -> None:
    """Create or inspect the database schema (CARTMEM_DATABASE_URL)."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to reach.")
@json_option
@click.pass_obj
def upgrade(app, revision: str, as_json: bool) -> None:
    """Migrate the schema; running it again changes nothing."""
    before = database.current_revision(app.settings)
    after = database.upgrade(app.settings, revision)
    result = {"from": before, "to": after, "changed": before != after}
    emit(
        result,
        as_json,
        lambda out: out.print(
            f"database upgraded from {before or 'empty'} to {after}"
            if before != after
            else f"database already at {after}; nothing to do"
        ),
    )


@db.command()
@json_option
@click.pass_obj
def current(app, as_json: bool) -> None:
    """Show the schema revision of the database and whether it is up to date."""
    revision = database.current_revision(app.settings)
    head = database.head_revision()
    result = {"current": revision, "head": head, "up_to_date": revision == head}
    if revision is None:
        line = f"database has no cartmem schema yet; `cartmem db upgrade` creates revision {head}"
    elif revision == head:
        line = f"database at {revision} (head)"
    else:
        line = f"database at {revision}; head is {head}: run `cartmem db upgrade`"
    emit(result, as_json, lambda out: out.print(line))
