"""Waiting for new queries: PostgreSQL LISTEN/NOTIFY when available, else plain polling.

Checkout services may insert rows with plain SQL that sends no notification, so the wait
always ends after the poll interval too: NOTIFY makes answers fast, polling makes them sure.
"""

from __future__ import annotations

import contextlib
import select
import time
from typing import Any

import sqlalchemy as sa

from app.db import Database
from app.settings import Settings
from storage.query_queue import NOTIFY_CHANNEL


class Waker:
    def __init__(self, settings: Settings, database: Database) -> None:
        self._conn: Any = None
        if settings.database_backend != "postgresql":
            return
        try:
            pooled = database.engine.raw_connection()
            # our own connection, out of the pool: it is switched to autocommit for LISTEN,
            # and returned to the pool it would make every later transaction autocommit
            self._conn = pooled.driver_connection
            pooled.detach()
            self._conn.autocommit = True
            with self._conn.cursor() as cur:
                cur.execute(f"LISTEN {NOTIFY_CHANNEL}")
        # a server that refused the connection raises the driver's own error here (the
        # pool does not wrap it): the worker then says so on its first claim, not here
        except (sa.exc.SQLAlchemyError, database.engine.dialect.loaded_dbapi.Error):
            self._conn = None  # polling alone still answers everything

    def wait(self, timeout_s: float) -> bool:
        """Until a notification arrives (True) or ``timeout_s`` passes (False)."""
        if self._conn is None:
            time.sleep(timeout_s)
            return False
        try:
            ready, _, _ = select.select([self._conn], [], [], timeout_s)
            if ready:
                self._conn.poll()
                notified = bool(self._conn.notifies)
                self._conn.notifies.clear()
                return notified
        except Exception:  # a dropped connection: fall back to polling
            self.close()
            time.sleep(timeout_s)
        return False

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
