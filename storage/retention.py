"""Removing a shopping session's data: what retention lets expire, and erasure of all of it.

Every table that holds a session's data is named here, children before parents, and rows
are deleted explicitly rather than through foreign-key cascades: ``queries``, ``scans``
and ``dead_letters`` name sessions without a foreign key (a checkout may ask about a
session before its first chunk arrives), and a deletion must not depend on the database
enforcing cascades.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import (
    Answer,
    Base,
    DeadLetter,
    Erasure,
    EvidenceThumbnail,
    FlagReview,
    MemoryArray,
    Query,
    Reconciliation,
    Scan,
    SessionMemory,
    SessionStatus,
    ShoppingSession,
    WebhookDelivery,
)

#: what each kind of retained data is, as (table, its session column), children first
KINDS: dict[str, tuple[tuple[type[Base], sa.orm.InstrumentedAttribute[str]], ...]] = {
    "memories": ((MemoryArray, MemoryArray.session_id), (SessionMemory, SessionMemory.session_id)),
    "evidence": ((EvidenceThumbnail, EvidenceThumbnail.session_id),),
    "answers": (),  # queries and their answers: ``_delete_answers`` first, then queries
    "reconciliations": (
        (WebhookDelivery, WebhookDelivery.session_id),
        (FlagReview, FlagReview.session_id),
        (Reconciliation, Reconciliation.session_id),
        (Scan, Scan.session_id),
    ),
}


def closed_sessions_ended_before(
    db: Session, cutoff: dt.datetime, *, after_id: str = "", limit: int
) -> list[str]:
    """Ids of closed sessions that ended at or before ``cutoff``, in id order from
    ``after_id`` on (a batch at a time)."""
    return list(
        db.scalars(
            sa.select(ShoppingSession.id)
            .where(
                ShoppingSession.status == SessionStatus.CLOSED.value,
                ShoppingSession.ended_at <= cutoff,
                ShoppingSession.id > after_id,
            )
            .order_by(ShoppingSession.id)
            .limit(limit)
        )
    )


def delete_kind(db: Session, kind: str, session_ids: Sequence[str]) -> int:
    """Delete the ``kind`` data of ``session_ids``; returns the rows deleted."""
    if kind == "answers":
        return _delete_answers(db, session_ids) + _delete(db, Query, Query.session_id, session_ids)
    return sum(_delete(db, model, column, session_ids) for model, column in KINDS[kind])


def delete_sessions(db: Session, session_ids: Sequence[str]) -> dict[str, int]:
    """Every row of ``session_ids`` in every table, the session rows last; table -> rows."""
    counts: dict[str, int] = {}
    for kind in ("memories", "evidence", "reconciliations"):
        for model, column in KINDS[kind]:
            counts[column.class_.__tablename__] = _delete(db, model, column, session_ids)
    counts["answers"] = _delete_answers(db, session_ids)
    counts["queries"] = _delete(db, Query, Query.session_id, session_ids)
    counts["dead_letters"] = _delete_dead_letters_of(db, session_ids)
    counts["sessions"] = _delete(db, ShoppingSession, ShoppingSession.id, session_ids)
    return counts


def delete_dead_letters_before(db: Session, cutoff: dt.datetime, *, limit: int) -> int:
    ids = list(
        db.scalars(
            sa.select(DeadLetter.id)
            .where(DeadLetter.created_at <= cutoff)
            .order_by(DeadLetter.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    return _rowcount(db.execute(sa.delete(DeadLetter).where(DeadLetter.id.in_(ids))))


def record_erasure(
    db: Session, *, session_id: str, erased_by: str, reason: str | None, counts: dict[str, int]
) -> Erasure:
    row = Erasure(session_id=session_id, erased_by=erased_by, reason=reason, rows_deleted=counts)
    db.add(row)
    db.flush()
    return row


def session_status(db: Session, session_id: str) -> str | None:
    """The session's status, or None when there is no session row."""
    return db.scalar(sa.select(ShoppingSession.status).where(ShoppingSession.id == session_id))


def _delete_answers(db: Session, session_ids: Sequence[str]) -> int:
    query_ids = sa.select(Query.id).where(Query.session_id.in_(session_ids))
    return _rowcount(db.execute(sa.delete(Answer).where(Answer.query_id.in_(query_ids))))


def _delete_dead_letters_of(db: Session, session_ids: Sequence[str]) -> int:
    # a dead letter names its session in session_id, or only in its Kafka key when the
    # message was too broken to say more
    return _rowcount(
        db.execute(
            sa.delete(DeadLetter).where(
                sa.or_(DeadLetter.session_id.in_(session_ids), DeadLetter.key.in_(session_ids))
            )
        )
    )


def _delete(
    db: Session, model: type[Base], column: sa.orm.InstrumentedAttribute[str], ids: Sequence[str]
) -> int:
    return _rowcount(db.execute(sa.delete(model).where(column.in_(ids))))


def _rowcount(result: sa.Result[object]) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
