"""`cartmem queries requeue`: failed queries back to the workers once their cause is fixed."""

from __future__ import annotations

from collections.abc import Sequence

from app.db import Database
from storage import query_queue as queue


def requeue_failed(
    database: Database,
    *,
    ids: Sequence[int] = (),
    session_id: str | None = None,
    error_contains: str | None = None,
) -> list[int]:
    """Ids of the failed queries matching every filter given, now pending again."""
    with database.session() as db:
        return queue.requeue_failed(
            db, ids=list(ids), session_id=session_id, error_contains=error_contains
        )
