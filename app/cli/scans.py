"""`cartmem scans`: what the till scanned for a session (this command plays the till)."""

from __future__ import annotations

import click

from app import reconcile as reconcile_ops
from app.cli._output import emit, json_option, table


@click.group()
def scans() -> None:
    """Record and list the lines the point of sale scanned."""


@scans.command()
@click.option("--session", "session_id", required=True, help="The shopping session.")
@click.option("--sku", required=True, help="The product scanned.")
@click.option("--qty", type=click.IntRange(1), default=1, show_default=True)
@json_option
@click.pass_obj
def add(app, session_id: str, sku: str, qty: int, as_json: bool) -> None:
    """Add one scanned line to a session."""
    line = reconcile_ops.add_scan(app.database, session_id, sku, qty=qty)
    emit(
        line,
        as_json,
        lambda out: out.print(f"scanned {line.qty} x {line.sku} for session {line.session_id}"),
    )


@scans.command(name="list")
@click.option("--session", "session_id", required=True, help="The shopping session.")
@json_option
@click.pass_obj
def list_(app, session_id: str, as_json: bool) -> None:
    """List a session's scanned lines in till order."""
    lines = reconcile_ops.list_scans(app.database, session_id)
    rows = ((s.id, s.sku, s.qty, s.scanned_at.isoformat(timespec="seconds")) for s in lines)
    emit(
        lines,
        as_json,
        lambda out: out.print(
            table(f"scans of {session_id} ({len(lines)})", ("id", "sku", "qty", "scanned"), rows)
        ),
    )
