"""`cartmem purge`: delete the shopper data retention lets expire (docs/PRIVACY.md)."""

from __future__ import annotations

import click
from rich.console import Console

from app.cli._output import emit, json_option
from app.privacy import PurgeReport, RetentionPolicy
from app.privacy import purge as purge_expired
from app.privacy.housekeeper import run_housekeeper


@click.command()
@click.option(
    "--every",
    "every_s",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Purge again every SECONDS until SIGTERM or Ctrl-C, logging what went: the "
    "housekeeper of a deployment whose workers' roles may not delete (docs/SECURITY.md).",
)
@json_option
@click.pass_obj
def purge(app, every_s: float | None, as_json: bool) -> None:
    """Delete what CARTMEM_RETENTION_* lets expire (closed sessions only; safe while the
    workers run, and again: a second run deletes nothing more)."""
    if every_s is not None:
        run_housekeeper(app.database, app.settings, every_s)
        return
    report = purge_expired(app.database, RetentionPolicy.of(app.settings))
    emit(report, as_json, lambda out: _print(out, report))


def _print(out: Console, r: PurgeReport) -> None:
    if not r.rows_deleted:
        out.print("nothing has expired")
        return
    rows = ", ".join(f"{kind} {n}" for kind, n in sorted(r.rows_deleted.items()))
    out.print(f"deleted {rows}; {r.sessions_removed} sessions removed whole")
