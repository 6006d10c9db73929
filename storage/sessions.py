"""Queries about shopping sessions for people and checkout services."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.errors import RowNotFoundError
from storage.models import DeadLetter, Query, Scan, SessionMemory, ShoppingSession


@dataclass(frozen=True)
class SessionSummary:
    session: ShoppingSession
    frames_seen: int
    model_version: str | None
    queries: int
    scans: int
    dead_letters: int


def list_sessions(
    db: Session, *, status: str | None = None, limit: int = 100
) -> Sequence[SessionSummary]:
    """Newest first, with the counts staff look at."""
    stmt = sa.select(ShoppingSession).order_by(
        ShoppingSession.started_at.desc(), ShoppingSession.id
    )
    if status:
        stmt = stmt.where(ShoppingSession.status == status)
    sessions = db.scalars(stmt.limit(limit)).all()
    return [_summarize(db, s) for s in sessions]


def get_session(db: Session, session_id: str) -> SessionSummary:
    found = db.get(ShoppingSession, session_id)
    if found is None:
        raise RowNotFoundError(f"no session {session_id!r}")
    return _summarize(db, found)


def _summarize(db: Session, session: ShoppingSession) -> SessionSummary:
    memory = db.get(SessionMemory, session.id)

    def count(model: type, column: InstrumentedAttribute[str | None]) -> int:
        return (
            db.scalar(sa.select(sa.func.count()).select_from(model).where(column == session.id))
            or 0
        )

    return SessionSummary(
        session=session,
        frames_seen=memory.frames_seen if memory else 0,
        model_version=memory.model_version if memory else None,
        queries=count(Query, Query.session_id),
        scans=count(Scan, Scan.session_id),
        dead_letters=count(DeadLetter, DeadLetter.session_id),
    )
