"""``cartmem sessions delete``: a shopper's right to erasure for one session.

Every row that names the session goes, in one transaction: its memory and pending frames,
evidence thumbnails, queries and answers, scans, reconciliation, staff reviews, webhook
deliveries, dead letters, and the session row. What stays is one ``erasures`` row saying
that it happened, when, at whose request and how many rows went. Video still in Kafka is
out of cartmem's reach: the topic's retention bounds it (docs/PRIVACY.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.db import Database
from app.errors import InvalidInputError
from storage import SessionStatus
from storage import retention as store


@dataclass(frozen=True)
class ErasureReport:
    session_id: str
    rows_deleted: dict[str, int]  # table -> rows
    erased_at: dt.datetime
    erased_by: str


def erase_session(
    database: Database, session_id: str, *, erased_by: str, reason: str | None = None
) -> ErasureReport:
    """Erase every trace of ``session_id`` but the audit row. A session still streaming is
    refused: ingest would write it again with its next chunk."""
    if not erased_by.strip():
        raise InvalidInputError("an erasure needs the name of who asked for it (--by NAME).")
    with database.session() as db:
        if store.session_status(db, session_id) == SessionStatus.OPEN.value:
            raise InvalidInputError(
                f"session {session_id!r} is still open; erase it once it has ended "
                "(its session_end, or CARTMEM_SESSION_IDLE_TIMEOUT_S without a message)."
            )
        counts = store.delete_sessions(db, [session_id])
        row = store.record_erasure(
            db, session_id=session_id, erased_by=erased_by.strip(), reason=reason, counts=counts
        )
        return ErasureReport(session_id, counts, row.erased_at, row.erased_by)
