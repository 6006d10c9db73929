"""Dead letters as operators read them, and the mark a replay leaves."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import DeadLetter
from storage.query_queue import database_now


def list_dead_letters(
    db: Session, *, session_id: str | None = None, limit: int = 100
) -> Sequence[DeadLetter]:
    """Newest first; a session's are those naming it, or keyed by it when the message was too
    broken to name one."""
    stmt = sa.select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
    if session_id is not None:
        stmt = stmt.where(sa.or_(DeadLetter.session_id == session_id, DeadLetter.key == session_id))
    return db.scalars(stmt).all()


def get_dead_letter(db: Session, dead_letter_id: int) -> DeadLetter | None:
    return db.get(DeadLetter, dead_letter_id)


def mark_replayed(db: Session, row: DeadLetter, *, offset: int) -> None:
    row.replayed_at = database_now(db)
    row.replayed_offset = offset
    db.flush()
