"""`cartmem db`: schema migrations through Alembic, and the components' database roles."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from app import db as database
from app import db_roles
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


def _pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple]:
    pairs = []
    for value in values:
        component, sep, rest = value.partition("=")
        if not sep:
            raise click.BadParameter(f"{value!r} is not COMPONENT=VALUE", ctx, param)
        pairs.append((component, rest))
    return pairs


@db.command()
@click.option(
    "--apply", "run", is_flag=True, help="Run the SQL (else print it for a person to run)."
)
@click.option(
    "--login",
    "logins",
    multiple=True,
    callback=_pairs,
    metavar="COMPONENT=USER",
    help="Make USER a login member of the component's role (ingest, answer, checkout, staff).",
)
@click.option(
    "--login-url",
    "login_urls",
    multiple=True,
    callback=_pairs,
    metavar="COMPONENT=FILE",
    help="The same, user and password from the database URL in FILE (the file the component "
    "reads as CARTMEM_DATABASE_URL_FILE).",
)
@json_option
@click.pass_obj
def roles(app, run: bool, logins: list, login_urls: list, as_json: bool) -> None:
    """Create the components' PostgreSQL roles and grant each only what it needs
    (docs/SECURITY.md); running it again changes nothing. Run it as the migrations' owner
    or a user with CREATEROLE."""
    wanted = [db_roles.login(c, user) for c, user in logins]
    wanted += [db_roles.login_from_url_file(c, Path(path)) for c, path in login_urls]
    report = db_roles.manage_roles(app.settings, wanted, apply=run)
    emit(report, as_json, lambda out: _print_roles(out, report))


def _print_roles(out: Console, r: db_roles.RolesReport) -> None:
    if not r.applied:
        out.print("-- what `cartmem db roles --apply` would run:")
        for statement in r.statements:
            out.print(f"{statement};")
    else:
        out.print("each role holds exactly its rights in this database (docs/SECURITY.md)")
    if r.created:
        out.print(f"created roles {', '.join(r.created)}")
    if r.missing:
        out.print(
            f"roles {', '.join(r.missing)} are missing and this user may not create them; "
            "run this as a user with CREATEROLE"
        )
    for group, users in sorted(r.members.items()):
        out.print(f"{group}: {', '.join(users) or 'no login users'}")
