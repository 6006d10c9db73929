"""``CARTMEM_QUERY_MAX_ATTEMPTS`` caps claims: a query whose lease keeps running out is
failed, not claimed a fourth time (the PostgreSQL twin is in tests/integration)."""

import datetime as dt

from sqlalchemy.orm import Session

from storage import Query, QueryStatus
from storage import query_queue as queue

T0 = dt.datetime(2026, 12, 1, 12, 0, 0)


def test_a_query_whose_lease_runs_out_is_claimed_at_most_max_attempts_times(db: Session) -> None:
    query_id = queue.enqueue(db, session_id="s", kind="activity", params={})
    db.get_one(Query, query_id).not_before = T0
    claims = []
    for minute in range(6):  # each worker dies holding it; the lease is 30 s
        now = T0 + dt.timedelta(minutes=minute)
        claimed = queue.claim(db, worker=f"w{minute}", limit=4, lease_s=30, max_attempts=3, now=now)
        claims += [c.attempts for c in claimed]
    row = db.get_one(Query, query_id)
    assert claims == [1, 2, 3]
    assert row.status == QueryStatus.FAILED.value and row.attempts == 3
    assert row.error is not None and row.error.startswith("gave up after 3 attempts")
    assert row.leased_by is None and row.lease_expires_at is None


def test_a_live_lease_on_the_last_attempt_is_left_alone(db: Session) -> None:
    query_id = queue.enqueue(db, session_id="s", kind="activity", params={})
    db.get_one(Query, query_id).not_before = T0
    for minute in range(3):
        now = T0 + dt.timedelta(minutes=minute)
        queue.claim(db, worker="w", limit=4, lease_s=30, max_attempts=3, now=now)
    # the third claim's lease still runs: nothing to fail, nothing to claim
    assert queue.claim(db, worker="x", limit=4, lease_s=30, max_attempts=3, now=now) == []
    assert db.get_one(Query, query_id).status == QueryStatus.RUNNING.value
