"""Evidence thumbnails through the ingest commit: a replayed commit stores nothing twice."""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage import EvidenceThumbnail
from storage import query_queue as queue
from storage.evidence import Thumbnail, answered_payloads, load_thumbnails, thumbnail_index
from storage.ingest_state import SessionSnapshot, commit_ingest_state, load_session


def thumb(second: int, size: int = 10) -> Thumbnail:
    return Thumbnail(second * 1_000_000, 16, 12, bytes([second]) * size)


def commit(db: Session, snap: SessionSnapshot) -> None:
    commit_ingest_state(db, group="g", offsets={("t", 0): 1}, sessions=[snap])
    db.commit()


def test_a_replayed_commit_changes_nothing_and_thinning_deletes(db: Session) -> None:
    first = SessionSnapshot("s", thumbnails=(thumb(0), thumb(1), thumb(2, size=30)))
    commit(db, first)
    commit(db, first)  # the same commit again, as after a crash before the offsets moved on
    assert thumbnail_index(db, "s") == [(0, 10), (1_000_000, 10), (2_000_000, 30)]
    assert db.query(EvidenceThumbnail).count() == 3

    thinned = SessionSnapshot("s", thumbnails=(thumb(4),), thumbnails_dropped=(1_000_000,))
    commit(db, thinned)
    commit(db, thinned)
    assert [t for t, _ in thumbnail_index(db, "s")] == [0, 2_000_000, 4_000_000]
    snap = load_session(db, "s")
    assert snap is not None and snap.thumbnail_sizes == ((0, 10), (2_000_000, 30), (4_000_000, 10))
    assert not snap.thumbnails and not snap.thumbnails_dropped

    loaded = load_thumbnails(db, "s", [4_000_000, 0, 1_000_000])
    assert loaded == [thumb(0), thumb(4)]


def test_only_answered_queries_of_the_kind_are_read(db: Session) -> None:
    commit(db, SessionSnapshot("s"))
    params = {"activity": "put_in_cart", "from": 0.0, "to": 4.0}
    for kind in ("object", "object", "time"):
        queue.enqueue(db, session_id="s", kind=kind, params=params)
    claimed = queue.claim(db, worker="w", limit=3, lease_s=60)
    queue.complete(db, query_id=claimed[0].id, worker="w", payload={"n": 1}, model_version="m")
    queue.complete(db, query_id=claimed[2].id, worker="w", payload={"n": 3}, model_version="m")
    db.commit()
    assert [p["n"] for p in answered_payloads(db, "s", kind="object")] == [1]
