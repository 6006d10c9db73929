"""``cartmem purge``: remove what retention lets expire, a batch of sessions at a time.

Each kind of a closed session's data expires ``CARTMEM_RETENTION_<KIND>_DAYS`` after the
session ended (0: as soon as it ended); the session row itself, and everything still left
of it, after ``CARTMEM_RETENTION_SESSIONS_DAYS``. Dead letters expire that long after they
were written. Open sessions are never touched. Each batch is one short transaction, so the
purge is safe while workers run; running it again deletes nothing more (idempotent).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from app.db import Database
from app.settings import Settings
from storage import retention as store
from storage.query_queue import database_now

log = logging.getLogger("cartmem.purge")

BATCH = 500  # sessions per transaction


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each kind of data is kept after its session ended."""

    memories: float
    evidence: float
    answers: float
    reconciliations: float
    sessions: float
    dead_letters: float

    @classmethod
    def of(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            settings.retention_memories_days,
            settings.retention_evidence_days,
            settings.retention_answers_days,
            settings.retention_reconciliations_days,
            settings.retention_sessions_days,
            settings.retention_dead_letters_days,
        )


@dataclass
class PurgeReport:
    rows_deleted: dict[str, int] = field(default_factory=dict)  # kind -> rows
    sessions_removed: int = 0

    def add(self, kind: str, rows: int) -> None:
        self.rows_deleted[kind] = self.rows_deleted.get(kind, 0) + rows


def purge(database: Database, policy: RetentionPolicy, *, batch: int = BATCH) -> PurgeReport:
    """Delete every expired row now; returns what went."""
    report = PurgeReport()
    with database.session() as db:
        now = database_now(db)
    for kind in ("memories", "evidence", "answers", "reconciliations"):
        cutoff = now - dt.timedelta(days=getattr(policy, kind))
        for ids in _batches(database, cutoff, batch):
            with database.session() as db:
                report.add(kind, store.delete_kind(db, kind, ids))
    for ids in _batches(database, now - dt.timedelta(days=policy.sessions), batch):
        with database.session() as db:
            for table, rows in store.delete_sessions(db, ids).items():
                report.add(table, rows)
        report.sessions_removed += len(ids)
    cutoff = now - dt.timedelta(days=policy.dead_letters)
    while True:
        with database.session() as db:
            rows = store.delete_dead_letters_before(db, cutoff, limit=batch)
        report.add("dead_letters", rows)
        if rows < batch:
            break
    report.rows_deleted = {k: v for k, v in report.rows_deleted.items() if v}
    if report.rows_deleted:
        log.info("purged %s", report.rows_deleted)
    return report


def _batches(database: Database, cutoff: dt.datetime, size: int):
    """Ids of closed sessions that ended by ``cutoff``, ``size`` at a time (read afresh per
    batch, so sessions deleted meanwhile are simply not there)."""
    after = ""
    while True:
        with database.session() as db:
            ids = store.closed_sessions_ended_before(db, cutoff, after_id=after, limit=size)
        if not ids:
            return
        yield ids
        after = ids[-1]
