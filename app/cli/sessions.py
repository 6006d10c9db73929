"""`cartmem sessions`: shopping sessions and what cartmem holds for them."""

from __future__ import annotations

import click

from app import sessions as session_ops
from app.cli._output import emit, json_option, table
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
