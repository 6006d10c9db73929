"""Alembic against a real PostgreSQL (and the SQLite default): up, down, up, and no drift."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app import db as database
from app.settings import Settings
from storage import Base

TABLES = {
    "sessions",
    "session_memories",
    "memory_arrays",
    "evidence_thumbnails",
    "partition_offsets",
    "products",
    "queries",
    "answers",
    "scans",
    "reconciliations",
    "dead_letters",
    "flag_reviews",
    "webhook_deliveries",
    "erasures",
}


def _tables(settings: Settings) -> set[str]:
    engine = sa.create_engine(settings.database_url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _drift(settings: Settings) -> list:
    engine = sa.create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


#: a migration's data step, on the SQLite default and on PostgreSQL
BOTH_DATABASES = pytest.mark.parametrize(
    "fixture", ["sqlite_settings", pytest.param("pg_settings", marks=pytest.mark.postgres)]
)


def _at_revision(settings: Settings, revision: str) -> tuple[Settings, sa.Engine]:
    """The database upgraded to ``revision``, and an engine on it."""
    database.upgrade(settings, revision)
    return settings, sa.create_engine(settings.database_url)


def _add_session(conn: sa.Connection, session_id: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO sessions (id, status, start_info, last_seq, seq_gaps) "
            "VALUES (:id, 'open', '{}', -1, '[]')"
        ),
        {"id": session_id},
    )


@pytest.mark.postgres
def test_upgrade_downgrade_upgrade_on_postgres(pg_settings: Settings) -> None:
    assert database.current_revision(pg_settings) is None
    assert database.upgrade(pg_settings) == database.head_revision()
    assert _tables(pg_settings) == TABLES
    database.downgrade(pg_settings, "base")
    assert _tables(pg_settings) == set()
    assert database.current_revision(pg_settings) is None
    database.upgrade(pg_settings)
    assert _tables(pg_settings) == TABLES


@pytest.mark.postgres
def test_upgrade_twice_changes_nothing(pg_settings: Settings) -> None:
    database.upgrade(pg_settings)
    engine = sa.create_engine(pg_settings.database_url)
    with engine.connect() as conn:
        before = sorted(
            conn.execute(
                sa.text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'public'"
                )
            ).all()
        )
    database.upgrade(pg_settings)
    with engine.connect() as conn:
        after = sorted(
            conn.execute(
                sa.text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'public'"
                )
            ).all()
        )
    engine.dispose()
    assert before == after and len(before) > 50


@pytest.mark.postgres
def test_models_and_migrations_agree_on_postgres(pg_settings: Settings) -> None:
    database.upgrade(pg_settings)
    assert _drift(pg_settings) == []


def test_models_and_migrations_agree_on_sqlite(sqlite_settings: Settings) -> None:
    database.upgrade(sqlite_settings)
    assert _tables(sqlite_settings) == TABLES
    assert _drift(sqlite_settings) == []


@BOTH_DATABASES
def test_0004_takes_each_memorys_fps_from_its_pending_info(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    settings, engine = _at_revision(request.getfixturevalue(fixture), "0003")
    memories = sa.table(
        "session_memories",
        sa.column("session_id"),
        sa.column("model_version"),
        sa.column("frames_seen"),
        sa.column("pending_info", sa.JSON),
    )
    info = {"s-old": {"fps": 2.0, "next_index": 4}, "s-none": {}}
    with engine.begin() as conn:
        for sid, pending in info.items():
            _add_session(conn, sid)
            conn.execute(
                memories.insert(),
                {
                    "session_id": sid,
                    "model_version": "m",
                    "frames_seen": 8,
                    "pending_info": pending,
                },
            )
    database.upgrade(settings)
    with engine.connect() as conn:
        fps = dict(conn.execute(sa.text("SELECT session_id, fps FROM session_memories")).all())
    engine.dispose()
    assert fps == {"s-old": 2.0, "s-none": None}


@BOTH_DATABASES
def test_0011_moves_each_stored_cart_band_to_its_own_part_and_back(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    settings, engine = _at_revision(request.getfixturevalue(fixture), "0010")
    insert_array = sa.text(
        "INSERT INTO memory_arrays (session_id, part, name, dtype, shape, data) "
        "VALUES ('s', :part, :name, '<f2', '[1]', :data)"
    )
    with engine.begin() as conn:
        _add_session(conn, "s")
        conn.execute(
            sa.text(
                "INSERT INTO session_memories (session_id, model_version, frames_seen, "
                "pending_info) VALUES ('s', 'm', 1, '{}')"
            )
        )
        for part, name in (("memory", "tokens"), ("memory", "cart_cells"), ("pending", "held")):
            conn.execute(insert_array, {"part": part, "name": name, "data": b"\0\0"})

    def parts() -> set[tuple[str, str]]:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT part, name FROM memory_arrays")).all())

    database.upgrade(settings)
    assert parts() == {("memory", "tokens"), ("band", "cart_cells"), ("pending", "held")}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # still checked
        conn.execute(insert_array, {"part": "other", "name": "x", "data": b"\0\0"})
    database.downgrade(settings, "0010")
    assert parts() == {("memory", "tokens"), ("memory", "cart_cells"), ("pending", "held")}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(insert_array, {"part": "band", "name": "x", "data": b"\0\0"})
    engine.dispose()
