"""`cartmem deadletters`: messages ingest could not use, and sending one again once fixed."""

from __future__ import annotations

import click
from rich.console import Console

from app.cli._output import emit, json_option, table
from app.errors import NotFoundError
from app.ingest.replay import ReplayReport, replay_dead_letter
from storage import DeadLetter
from storage import dead_letters as store


def _json(row: DeadLetter, *, full: bool = False) -> dict[str, object]:
    out: dict[str, object] = {
        "id": row.id,
        "created_at": row.created_at,
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
        "session": row.session_id or row.key,  # a message too broken to parse: its key
        "reason": row.reason,
        "size": row.size,
        "replayed_at": row.replayed_at,
        "replayed_offset": row.replayed_offset,
    }
    if full:
        out |= {
            "key": row.key,
            "headers": row.headers,
            "sha256": row.sha256,
            "head": row.head.hex(),
        }
    return out


@click.group()
def deadletters() -> None:
    """Messages ingest set aside, each with the reason in a sentence."""


@deadletters.command(name="list")
@click.option("--session", "session_id", default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
@click.pass_obj
def list_(app, session_id: str | None, limit: int, as_json: bool) -> None:
    """Newest first."""
    with app.database.session() as db:
        rows = [_json(r) for r in store.list_dead_letters(db, session_id=session_id, limit=limit)]
    columns = ("id", "created_at", "session", "offset", "size", "reason", "replayed_offset")
    emit(
        rows,
        as_json,
        lambda out: out.print(
            table(f"dead letters ({len(rows)})", columns, ([r[c] for c in columns] for r in rows))
        ),
    )


@deadletters.command()
@click.argument("dead_letter_id", type=int)
@json_option
@click.pass_obj
def show(app, dead_letter_id: int, as_json: bool) -> None:
    """One dead letter in full: headers, key, hash and the first bytes of its value."""
    with app.database.session() as db:
        row = store.get_dead_letter(db, dead_letter_id)
        if row is None:
            raise NotFoundError(f"no dead letter {dead_letter_id}.")
        shown = _json(row, full=True)
    emit(
        shown,
        as_json,
        lambda out: out.print(
            table(f"dead letter {dead_letter_id}", ("field", "value"), shown.items())
        ),
    )


@deadletters.command()
@click.argument("dead_letter_id", type=int)
@json_option
@click.pass_obj
def replay(app, dead_letter_id: int, as_json: bool) -> None:
    """Send the message again (read back from Kafka), once its cause is fixed: it must pass
    the contract's checks under the settings now in force."""
    report = replay_dead_letter(app.settings, app.database, dead_letter_id)
    emit(report, as_json, lambda out: _print(out, report))


def _print(out: Console, r: ReplayReport) -> None:
    out.print(
        f"dead letter {r.dead_letter_id} (session {r.session_id}) sent again: "
        f"{r.topic} offset {r.from_offset} -> {r.to_offset}; ingest applies it next"
    )
