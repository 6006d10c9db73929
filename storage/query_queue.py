"""The query queue in the ``queries`` table: enqueue, claim with a lease, complete, fail.

Exactly once: a worker claims rows with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite
serialises writers instead) and a lease; it writes the answer and marks the query done in
one transaction, and only while it still holds the lease. ``answers.query_id`` is unique,
so even a worker whose lease ran out cannot add a second answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import Answer, Query, QueryStatus

NOTIFY_CHANNEL = "cartmem_queries"


@dataclass(frozen=True)
class ClaimedQuery:
    id: int
    session_id: str
    kind: str
    params: dict[str, Any]
    attempts: int
    origin: str


def enqueue(
    db: Session, *, session_id: str, kind: str, params: dict[str, Any], origin: str = "api"
) -> int:
    """Insert a pending query; on PostgreSQL, listening workers wake when it commits."""
    query = Query(session_id=session_id, kind=kind, params=params, origin=origin)
    db.add(query)
    db.flush()
    notify(db, NOTIFY_CHANNEL, str(query.id))
    return query.id


def claim(
    db: Session,
    *,
    worker: str,
    limit: int,
    lease_s: float,
    max_attempts: int | None = None,
    now: dt.datetime | None = None,
) -> list[ClaimedQuery]:
    """Lease up to ``limit`` queries: pending ones due now, and running ones whose lease ran out.

    ``attempts`` counts claims, and a query is claimed at most ``max_attempts`` times: a
    running query whose lease ran out on its last attempt (its worker died or overran the
    lease each time) fails for good here instead of being claimed once more.
    """
    now = now or database_now(db)
    expired = sa.and_(Query.status == QueryStatus.RUNNING.value, Query.lease_expires_at < now)
    if max_attempts is not None:
        _fail_exhausted(db, sa.and_(expired, Query.attempts >= max_attempts), max_attempts)
    claimable = sa.or_(
        sa.and_(Query.status == QueryStatus.PENDING.value, Query.not_before <= now), expired
    )
    rows = db.scalars(
        sa.select(Query)
        .where(claimable)
        .order_by(Query.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for row in rows:
        row.status = QueryStatus.RUNNING.value
        row.leased_by = worker
        row.lease_expires_at = now + dt.timedelta(seconds=lease_s)
        row.attempts += 1
        claimed.append(
            ClaimedQuery(
                row.id, row.session_id, row.kind, dict(row.params), row.attempts, row.origin
            )
        )
    db.flush()
    return claimed


def _fail_exhausted(db: Session, where: sa.ColumnElement[bool], max_attempts: int) -> None:
    rows = db.scalars(sa.select(Query).where(where).with_for_update(skip_locked=True)).all()
    for row in rows:
        row.status = QueryStatus.FAILED.value
        row.lease_expires_at = None
        row.leased_by = None
        row.error = (
            f"gave up after {row.attempts} attempts: the lease ran out each time "
            "(the worker stopped or took longer than CARTMEM_QUERY_LEASE_S)."
        )
    db.flush()


@dataclass(frozen=True)
class Completion:
    """An answer to store; its payload gets ``queued_ms``, enqueue to commit by the database
    clock."""

    query_id: int
    payload: dict[str, Any]
    model_version: str


@dataclass(frozen=True)
class Failure:
    """A query given back for a retry after ``retry_after_s``, or (None) failed for good."""

    query_id: int
    error: str
    retry_after_s: float | None


def finish(
    db: Session, *, worker: str, completions: Sequence[Completion], failures: Sequence[Failure]
) -> set[int]:
    """Store the answers and failures of a batch: one locking read for all its queries, then
    the writes; only queries this worker still holds are touched. Returns their ids."""
    ids = [c.query_id for c in completions] + [f.query_id for f in failures]
    if not ids:
        return set()
    rows = db.scalars(sa.select(Query).where(Query.id.in_(ids)).with_for_update()).all()
    held = {
        row.id: row
        for row in rows
        if row.status == QueryStatus.RUNNING.value and row.leased_by == worker
    }
    now = database_now(db)
    for c in completions:
        row = held.get(c.query_id)
        if row is None:
            continue
        payload = c.payload | {"queued_ms": _milliseconds_between(row.created_at, now)}
        db.add(Answer(query_id=row.id, payload=payload, model_version=c.model_version))
        row.status = QueryStatus.DONE.value
        row.lease_expires_at = None
        row.error = None
    for f in failures:
        row = held.get(f.query_id)
        if row is None:
            continue
        row.error = f.error
        row.lease_expires_at = None
        row.leased_by = None
        if f.retry_after_s is None:
            row.status = QueryStatus.FAILED.value
        else:
            row.status = QueryStatus.PENDING.value
            row.not_before = now + dt.timedelta(seconds=f.retry_after_s)
    db.flush()
    return set(held)


def complete(
    db: Session, *, query_id: int, worker: str, payload: dict[str, Any], model_version: str
) -> bool:
    """Store the answer and mark the query done; False when this worker no longer holds it."""
    done = finish(
        db, worker=worker, completions=[Completion(query_id, payload, model_version)], failures=[]
    )
    return query_id in done


def fail(
    db: Session,
    *,
    query_id: int,
    worker: str,
    error: str,
    retry_after_s: float | None,
) -> bool:
    """Give the query back for a retry after ``retry_after_s``, or (None) fail it for good."""
    done = finish(
        db, worker=worker, completions=[], failures=[Failure(query_id, error, retry_after_s)]
    )
    return query_id in done


def get_query(db: Session, query_id: int) -> tuple[Query, Answer | None] | None:
    row = db.get(Query, query_id)
    if row is None:
        return None
    answer = db.scalar(sa.select(Answer).where(Answer.query_id == query_id))
    return row, answer


def list_queries(
    db: Session, *, status: str | None = None, session_id: str | None = None, limit: int = 100
) -> Sequence[Query]:
    stmt = sa.select(Query).order_by(Query.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(Query.status == status)
    if session_id:
        stmt = stmt.where(Query.session_id == session_id)
    return db.scalars(stmt).all()


def requeue_failed(
    db: Session,
    *,
    ids: Sequence[int] = (),
    session_id: str | None = None,
    error_contains: str | None = None,
) -> list[int]:
    """Failed queries matching every filter given back to ``pending``: attempts 0, no error,
    due now; their old error is not kept (the answer, or a new error, replaces it). On
    PostgreSQL, listening workers wake when this commits. Returns their ids."""
    stmt = sa.select(Query).where(Query.status == QueryStatus.FAILED.value).with_for_update()
    if ids:
        stmt = stmt.where(Query.id.in_(ids))
    if session_id is not None:
        stmt = stmt.where(Query.session_id == session_id)
    if error_contains is not None:
        stmt = stmt.where(Query.error.contains(error_contains, autoescape=True))
    now = database_now(db)
    requeued = []
    for row in db.scalars(stmt.order_by(Query.id)):
        row.status = QueryStatus.PENDING.value
        row.attempts = 0
        row.error = None
        row.leased_by = None
        row.lease_expires_at = None
        row.not_before = now
        requeued.append(row.id)
    db.flush()
    if requeued:
        notify(db, NOTIFY_CHANNEL, "")
    return requeued


@dataclass(frozen=True)
class QueueDepth:
    by_status: dict[str, int]  # every status, zero included
    due: int  # what a worker may claim now: pending and due, or running past its lease


def queue_depth(db: Session) -> QueueDepth:
    """Queries per status and how many are due; two counts the claim index answers."""
    now = database_now(db)
    counts = dict(db.execute(sa.select(Query.status, sa.func.count()).group_by(Query.status)).all())
    due = db.scalar(
        sa.select(sa.func.count()).where(
            sa.or_(
                sa.and_(Query.status == QueryStatus.PENDING.value, Query.not_before <= now),
                sa.and_(Query.status == QueryStatus.RUNNING.value, Query.lease_expires_at < now),
            )
        )
    )
    return QueueDepth({s.value: int(counts.get(s.value, 0)) for s in QueryStatus}, int(due or 0))


def _milliseconds_between(earlier: dt.datetime, later: dt.datetime) -> float:
    if earlier.tzinfo is None and later.tzinfo is not None:  # SQLite keeps naive UTC
        later = later.replace(tzinfo=None)
    return round((later - earlier).total_seconds() * 1000, 1)


def database_now(db: Session) -> dt.datetime:
    """The database's clock: leases compare against one clock whatever the workers' clocks say."""
    if db.get_bind().dialect.name == "postgresql":
        now = db.scalar(sa.select(sa.func.now()))
        assert isinstance(now, dt.datetime)
        return now
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def notify(db: Session, channel: str, payload: str) -> bool:
    """PostgreSQL ``NOTIFY channel, payload`` when the transaction commits (listeners wake);
    False where the database has no NOTIFY (SQLite)."""
    if db.get_bind().dialect.name != "postgresql":
        return False
    db.execute(sa.select(sa.func.pg_notify(channel, payload)))
    return True
