"""Engine and session factory for a database URL; the only place connections are configured."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, echo: bool = False) -> sa.Engine:
    """An engine for ``url`` (PostgreSQL or SQLite); creating it does not connect.

    SQLite gets foreign keys switched on (off by default there) and its directory created,
    so the embedded default works on a fresh machine.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, echo=echo)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=_pg_args(parsed))


def session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects readable after commit (the CLI prints them)."""
    return sessionmaker(engine, expire_on_commit=False)


def _pg_args(url: sa.URL) -> dict[str, object]:
    # fail in seconds, not minutes, when the server is unreachable
    return {} if "connect_timeout" in url.query else {"connect_timeout": 10}


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
