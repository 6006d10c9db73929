"""Shopper data: retention purges what expired, erasure leaves nothing of a session but the
audit row, on the embedded SQLite and a real PostgreSQL; every table is looked at."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from app import db as database_ops
from app.cli import main
from app.db import Database
from app.errors import InvalidInputError
from app.privacy import RetentionPolicy, erase_session, purge
from app.settings import Settings
from storage import Base
from storage.models import (
    Answer,
    DeadLetter,
    EvidenceThumbnail,
    FlagReview,
    MemoryArray,
    Query,
    Reconciliation,
    Scan,
    SessionMemory,
    ShoppingSession,
    WebhookDelivery,
)

KEEP = RetentionPolicy(365, 365, 365, 365, 365, 365)
_OFFSETS = itertools.count()


@pytest.fixture(params=["sqlite_settings", pytest.param("pg_settings", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    settings: Settings = request.getfixturevalue(request.param)
    database_ops.upgrade(settings)
    database = Database(settings)
    yield database
    database.dispose()


def shop(database: Database, session_id: str, *, status: str = "closed", ended_days_ago: float = 0):
    """A session with a row in every table that holds session data."""
    ended = dt.datetime.now(dt.UTC) - dt.timedelta(days=ended_days_ago, seconds=1)
    with database.session() as db:
        db.add(
            ShoppingSession(
                id=session_id,
                status=status,
                store_id="st-1",
                start_info={"camera": "cam-0", "note": f"trip {session_id}"},
                ended_at=ended if status == "closed" else None,
            )
        )
        db.flush()
        db.add(SessionMemory(session_id=session_id, frames_seen=3, model_version="m", fps=1.0))
        db.flush()
        db.add(
            MemoryArray(
                session_id=session_id,
                part="memory",
                name="tokens",
                dtype="uint8",
                shape=[1],
                data=b"x",
            )
        )
        db.add(
            EvidenceThumbnail(
                session_id=session_id,
                time_us=0,
                media_type="image/jpeg",
                width=1,
                height=1,
                data=b"j",
            )
        )
        query = Query(
            session_id=session_id, kind="activity", params={"sku": "A", "from": 0, "to": 1}
        )
        db.add(query)
        db.flush()
        db.add(Answer(query_id=query.id, payload={"session": session_id}, model_version="m"))
        db.add(Scan(session_id=session_id, sku="A", qty=1))
        db.add(
            Reconciliation(
                session_id=session_id, expected=[], scanned=[], discrepancies=[], model_version="m"
            )
        )
        db.add(
            FlagReview(
                session_id=session_id,
                sku="A",
                verdict="confirmed",
                reviewer="ana",
                flag={"sku": "A"},
                model_version="m",
            )
        )
        db.add(WebhookDelivery(session_id=session_id, payload={"session_id": session_id}))
        for key, named in ((session_id, session_id), (session_id, None)):  # by column or by key
            db.add(
                DeadLetter(
                    topic="t",
                    partition=0,
                    offset=next(_OFFSETS),
                    key=key,
                    session_id=named,
                    reason="bad",
                    size=1,
                    sha256="0" * 64,
                    head=b"h",
                )
            )


def mentions(database: Database, needle: str, *, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Rows of every table that mention ``needle`` anywhere (text, JSON or bytes)."""
    found: dict[str, int] = {}
    with database.session() as db:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            for row in db.execute(sa.select(table)).all():
                if any(_mentions(value, needle) for value in row):
                    found[table.name] = found.get(table.name, 0) + 1
    return found


def _mentions(value: Any, needle: str) -> bool:
    if isinstance(value, bytes | memoryview):
        return needle.encode() in bytes(value)
    if isinstance(value, dict | list):
        return needle in json.dumps(value)
    return isinstance(value, str) and needle in value


def test_erasure_leaves_only_the_audit_row(database: Database) -> None:
    shop(database, "erase-me")
    shop(database, "keep-me")
    assert set(mentions(database, "erase-me")) >= {
        "sessions",
        "session_memories",
        "memory_arrays",
        "evidence_thumbnails",
        "queries",
        "scans",
        "reconciliations",
        "flag_reviews",
        "webhook_deliveries",
        "dead_letters",
    }
    before = mentions(database, "keep-me")

    report = erase_session(database, "erase-me", erased_by="dpo@store", reason="request 17")
    assert mentions(database, "erase-me") == {"erasures": 1}
    assert mentions(database, "keep-me") == before  # nobody else's rows went
    assert report.rows_deleted["answers"] == 1 and report.rows_deleted["dead_letters"] == 2
    assert report.rows_deleted["sessions"] == 1 and report.erased_by == "dpo@store"
    again = erase_session(database, "erase-me", erased_by="dpo@store")
    assert sum(again.rows_deleted.values()) == 0  # nothing left; the request is on record


def test_an_open_session_is_not_erased(database: Database) -> None:
    shop(database, "streaming", status="open")
    with pytest.raises(InvalidInputError, match="still open"):
        erase_session(database, "streaming", erased_by="dpo")
    assert "sessions" in mentions(database, "streaming")


def test_retention_zero_purges_every_closed_session_and_nothing_else(database: Database) -> None:
    shop(database, "done-1")
    shop(database, "done-2")
    shop(database, "open-1", status="open")
    report = purge(database, RetentionPolicy(0, 0, 0, 0, 0, 0), batch=1)
    assert report.sessions_removed == 2
    assert mentions(database, "done-1") == {} and mentions(database, "done-2") == {}
    # the open session keeps everything; only the dead letters (not a session's) expired
    assert set(mentions(database, "open-1")) == {
        "sessions",
        "session_memories",
        "memory_arrays",
        "evidence_thumbnails",
        "queries",
        "answers",
        "scans",
        "reconciliations",
        "flag_reviews",
        "webhook_deliveries",
    }
    assert purge(database, RetentionPolicy(0, 0, 0, 0, 0, 0)).rows_deleted == {}  # idempotent


def test_each_kind_expires_on_its_own(database: Database) -> None:
    shop(database, "old", ended_days_ago=10)
    shop(database, "new", ended_days_ago=1)
    policy = dataclasses.replace(KEEP, memories=7, evidence=0)
    report = purge(database, policy)
    assert report.rows_deleted == {"memories": 2, "evidence": 2}  # old: memory + array; both: one
    assert "session_memories" not in mentions(database, "old")
    assert "session_memories" in mentions(database, "new")
    assert "evidence_thumbnails" not in mentions(database, "new")
    assert {"sessions", "queries", "reconciliations"} <= set(mentions(database, "old"))


def test_purge_and_delete_from_the_command_line(sqlite_settings: Settings) -> None:
    database_ops.upgrade(sqlite_settings)
    database = Database(sqlite_settings)
    try:
        shop(database, "cli-1")
        env = {"CARTMEM_DATA_DIR": str(sqlite_settings.data_dir), "CARTMEM_DATABASE_URL": ""}
        runner = CliRunner()
        kept = runner.invoke(main, ["purge", "--json"], env=env)
        assert kept.exit_code == 0, kept.output
        assert json.loads(kept.output)["rows_deleted"] == {}
        erased = runner.invoke(
            main, ["sessions", "delete", "cli-1", "--by", "dpo", "--yes", "--json"], env=env
        )
        assert erased.exit_code == 0, erased.output
        assert json.loads(erased.output)["rows_deleted"]["sessions"] == 1
        assert mentions(database, "cli-1") == {"erasures": 1}
        zero = {f"CARTMEM_RETENTION_{k}_DAYS": "0" for k in ("SESSIONS", "DEAD_LETTERS")}
        shop(database, "cli-2")
        purged = runner.invoke(main, ["purge"], env=env | zero)
        assert purged.exit_code == 0 and "1 sessions removed whole" in purged.output
        assert mentions(database, "cli-2") == {}
    finally:
        database.dispose()
