"""`cartmem sessions`: shopping sessions and what cartmem holds for them."""

from __future__ import annotations

import click

from app import sessions as session_ops
from app.cli._output import emit, json_option, table
from app.privacy import ErasureReport, erase_session
from storage import SessionStatus


@click.group()
def sessions() -> None:
    """Inspect shopping sessions."""


@sessions.command(name="list")
@click.option("--status", type=click.Choice([s.value for s in SessionStatus]), default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
@click.pass_obj
def list_(app, status: str | None, limit: int, as_json: bool) -> None:
    """List sessions, newest first."""
    found = session_ops.list_sessions(app.database, status=status, limit=limit)
    rows = (
        (
            s.id,
            s.status,
            s.store_id,
            s.started_at.isoformat(timespec="seconds"),
            s.frames_seen,
            s.queries,
            s.dead_letters,
        )
        for s in found
    )
    columns = ("session", "status", "store", "started", "frames", "queries", "dead letters")
    emit(found, as_json, lambda out: out.print(table(f"sessions ({len(found)})", columns, rows)))


@sessions.command()
@click.argument("session_id")
@json_option
@click.pass_obj
def show(app, session_id: str, as_json: bool) -> None:
    """Show one session in detail."""
    s = session_ops.show_session(app.database, session_id)
    rows = [
        ("status", s.status),
        ("store", s.store_id),
        ("started", s.started_at.isoformat(timespec="seconds")),
        ("ended", s.ended_at.isoformat(timespec="seconds") if s.ended_at else "still open"),
        ("frames in memory", s.frames_seen),
        ("model", s.model_version or "no memory yet"),
        ("last seq", s.last_seq),
        ("seq gaps", ", ".join(f"{a}->{b}" for a, b in s.seq_gaps) or "none"),
        ("video lost", "; ".join(str(loss.get("reason")) for loss in s.losses) or "none"),
        ("closed by cartmem", (s.end_info or {}).get("reason") or "no"),
        ("queries", s.queries),
        ("scans", s.scans),
        ("dead letters", s.dead_letters),
    ]
    emit(s, as_json, lambda out: out.print(table(f"session {s.id}", ("field", "value"), rows)))


@sessions.command()
@click.argument("session_id")
@click.option("--by", "erased_by", required=True, help="Who asked for the erasure (kept).")
@click.option("--reason", default=None, help="Why, e.g. the request's reference (kept).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_obj
def delete(
    app, session_id: str, erased_by: str, reason: str | None, yes: bool, as_json: bool
) -> None:
    """Erase every trace of SESSION_ID (right to erasure); an audit row records that it
    happened. Video still in Kafka goes with the topic's retention (docs/PRIVACY.md)."""
    if not yes and not as_json:
        click.confirm(f"Erase every row of session {session_id}? This cannot be undone", abort=True)
    report = erase_session(app.database, session_id, erased_by=erased_by, reason=reason)
    emit(report, as_json, lambda out: out.print(_erased(report)))


def _erased(r: ErasureReport) -> str:
    tables = ", ".join(f"{t} {n}" for t, n in r.rows_deleted.items() if n) or "none found"
    when = r.erased_at.isoformat(timespec="seconds")
    gone = sum(r.rows_deleted.values())
    audit = f"audit row kept ({r.erased_by}, {when})"
    return f"erased session {r.session_id}: {gone} rows ({tables}); {audit}"
