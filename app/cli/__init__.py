"""The ``cartmem`` command: one click group; each command parses, calls one function, prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from app import process
from app.cli import (
    answer,
    bench,
    catalog,
    config,
    db,
    deadletters,
    demo,
    dev,
    evaluate,
    evidence,
    ingest,
    publish,
    purge,
    reconcile,
    reviews,
    scans,
    sessions,
    synth,
    train,
)
from app.db import Database
from app.errors import CartmemError
from app.settings import Settings

__all__ = ["AppContext", "main", "run"]


@dataclass
class AppContext:
    """Settings read once per invocation; the database opens on first use, never at import."""

    settings: Settings
    _database: Database | None = field(default=None, repr=False)

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database(self.settings)
        return self._database

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()


class _CartmemGroup(click.Group):
    """Turns every domain error into one sentence on stderr and exit code 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CartmemError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_CartmemGroup)
@click.version_option(package_name="cartmem")
@click.pass_context
def main(ctx: click.Context) -> None:
    """cartmem: a fixed-size video memory per shopping session, and checkout answers from it.

    Configuration comes from CARTMEM_* environment variables (`cartmem config show`).
    """
    app = AppContext(Settings.from_env())
    ctx.obj = app
    ctx.call_on_close(app.close)


def run() -> None:
    """The ``cartmem`` console command: ``main``, then a worker's process ends at once."""
    try:
        main()
    except SystemExit as exc:
        process.exit_now_if_asked(exc.code)
        raise


for _command in (
    db.db,
    dev.dev,
    catalog.catalog,
    sessions.sessions,
    deadletters.deadletters,
    purge.purge,
    config.config,
    publish.publish,
    synth.synth,
    ingest.ingest,
    answer.answer,
    answer.ask,
    answer.queries,
    demo.demo,
    evidence.evidence,
    train.train,
    evaluate.evaluate,
    scans.scans,
    reconcile.reconcile,
    reviews.reviews,
    bench.bench,
):
    main.add_command(_command)
