"""Scans, reconciliation rows and the questions reconciliation asked, per session.

A session has at most one ``reconciliations`` row (``session_id`` is unique): saving again
replaces it. The JSON columns are written by ``app.reconcile``; this module only stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import Answer, Query, Reconciliation, Scan, ShoppingSession


def add_scan(db: Session, *, session_id: str, sku: str, qty: int) -> Scan:
    scan = Scan(session_id=session_id, sku=sku, qty=qty)
    db.add(scan)
    db.flush()
    return scan


def list_scans(db: Session, session_id: str) -> Sequence[Scan]:
    """A session's scan lines in the order the till sent them."""
    return db.scalars(sa.select(Scan).where(Scan.session_id == session_id).order_by(Scan.id)).all()


def lock_session(db: Session, session_id: str) -> ShoppingSession | None:
    """The session row, locked until the transaction ends (PostgreSQL; SQLite serialises writers).

    Two workers finishing the last questions of one session at the same moment would
    otherwise both enqueue the next questions or both write the row.
    """
    return db.scalar(
        sa.select(ShoppingSession).where(ShoppingSession.id == session_id).with_for_update()
    )


def session_queries(
    db: Session, session_id: str, *, origin: str
) -> list[tuple[Query, Answer | None]]:
    """The session's queries of ``origin``, oldest first, each with its answer if it has one."""
    rows = db.execute(
        sa.select(Query, Answer)
        .outerjoin(Answer, Answer.query_id == Query.id)
        .where(Query.session_id == session_id, Query.origin == origin)
        .order_by(Query.id)
    ).all()
    return [(query, answer) for query, answer in rows]


def has_queries(db: Session, session_id: str, *, origin: str) -> bool:
    """Whether the session has any query of ``origin``; reads ``queries`` only (ingest,
    which asks a session's first reconciliation questions, may not read answers)."""
    found = db.scalar(
        sa.select(Query.id).where(Query.session_id == session_id, Query.origin == origin).limit(1)
    )
    return found is not None


def sessions_of_queries(db: Session, query_ids: Sequence[int], *, origin: str) -> list[str]:
    """Sessions that own at least one of ``query_ids`` of ``origin``."""
    if not query_ids:
        return []
    return list(
        db.scalars(
            sa.select(Query.session_id)
            .where(Query.id.in_(query_ids), Query.origin == origin)
            .distinct()
            .order_by(Query.session_id)
        )
    )


def save_reconciliation(
    db: Session,
    *,
    session_id: str,
    expected: list[Any],
    scanned: list[Any],
    discrepancies: list[Any],
    model_version: str,
) -> Reconciliation:
    """Write the session's one row, replacing what an earlier computation stored."""
    row = get_reconciliation(db, session_id) or Reconciliation(session_id=session_id)
    row.expected = expected
    row.scanned = scanned
    row.discrepancies = discrepancies
    row.model_version = model_version
    if row.id is not None:  # a recomputation: say when, even if nothing changed
        row.updated_at = sa.func.now()
    db.add(row)
    db.flush()
    return row


def get_reconciliation(db: Session, session_id: str) -> Reconciliation | None:
    return db.scalar(sa.select(Reconciliation).where(Reconciliation.session_id == session_id))
