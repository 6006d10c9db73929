"""Shopping sessions as staff see them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import storage
from app.db import Database
from app.errors import NotFoundError


@dataclass(frozen=True)
class SessionInfo:
    id: str
    status: str
    store_id: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    frames_seen: int
    model_version: str | None
    last_seq: int
    seq_gaps: list[Any]
    losses: list[dict[str, Any]]  # video lost on the way, each with its reason
    end_info: dict[str, Any] | None
    queries: int
    scans: int
    dead_letters: int
    start_info: dict[str, Any]

    @classmethod
    def of(cls, summary: storage.SessionSummary) -> SessionInfo:
        s = summary.session
        return cls(
            id=s.id,
            status=s.status,
            store_id=s.store_id,
            started_at=s.started_at,
            ended_at=s.ended_at,
            frames_seen=summary.frames_seen,
            model_version=summary.model_version,
            last_seq=s.last_seq,
            seq_gaps=list(s.seq_gaps or []),
            losses=[dict(loss) for loss in s.losses or []],
            end_info=dict(s.end_info) if s.end_info is not None else None,
            queries=summary.queries,
            scans=summary.scans,
            dead_letters=summary.dead_letters,
            start_info=dict(s.start_info or {}),
        )


def list_sessions(
    database: Database, *, status: str | None = None, limit: int = 100
) -> list[SessionInfo]:
    with database.session() as db:
        return [SessionInfo.of(s) for s in storage.list_sessions(db, status=status, limit=limit)]


def show_session(database: Database, session_id: str) -> SessionInfo:
    with database.session() as db:
        try:
            return SessionInfo.of(storage.get_session(db, session_id))
        except storage.RowNotFoundError:
            raise NotFoundError(
                f"no session {session_id!r}; `cartmem sessions list` shows the known ones."
            ) from None
