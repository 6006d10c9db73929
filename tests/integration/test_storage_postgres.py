"""A round trip through the storage layer on a real PostgreSQL."""

import numpy as np
import pytest
import sqlalchemy as sa

import storage
from app import db as database
from app.db import Database
from app.settings import Settings
from storage import MemoryArray, SessionMemory, ShoppingSession

pytestmark = pytest.mark.postgres


def test_round_trip_through_storage(pg_settings: Settings) -> None:
    database.upgrade(pg_settings)
    db = Database(pg_settings)
    tokens = np.random.default_rng(1).standard_normal((49, 8)).astype(np.float16)
    with db.session() as s:
        s.add(ShoppingSession(id="s-pg", store_id="store-1", start_info={"candidate_skus": ["A"]}))
        s.add(
            SessionMemory(
                session_id="s-pg",
                frames_seen=40,
                model_version="tiny@1",
                arrays=[
                    MemoryArray(
                        part="memory",
                        name="tokens",
                        dtype="float16",
                        shape=[49, 8],
                        data=tokens.tobytes(),
                    )
                ],
            )
        )
        storage.add_product(s, sku="A", name="Apples", image_png=b"\x89PNG", image_size=(8, 8))
        s.add(storage.Scan(session_id="s-pg", sku="A"))
    with db.session() as s:
        summary = storage.get_session(s, "s-pg")
        assert summary.frames_seen == 40 and summary.scans == 1
        assert summary.session.start_info == {"candidate_skus": ["A"]}
        row = s.get(SessionMemory, "s-pg")
        assert row is not None
        (array,) = row.arrays
        assert np.array_equal(np.frombuffer(array.data, array.dtype).reshape(array.shape), tokens)
        # timestamps are timezone-aware and set by the server
        assert summary.session.started_at.tzinfo is not None
        assert (
            s.scalar(
                sa.text(
                    "SELECT typname FROM pg_type t JOIN pg_attribute a ON a.atttypid = t.oid "
                    "WHERE a.attrelid = 'sessions'::regclass AND a.attname = 'start_info'"
                )
            )
            == "jsonb"
        )
    db.dispose()


def test_a_worker_whose_partition_was_claimed_again_cannot_checkpoint(
    pg_settings: Settings,
) -> None:
    """Fencing: the zombie's commit is refused whole; the new owner's state stands."""
    from storage.errors import FencedError
    from storage.ingest_state import SessionSnapshot, claim_partitions, commit_ingest_state

    database.upgrade(pg_settings)
    db = Database(pg_settings)
    tp = ("video", 3)
    with db.session() as s:
        (zombie_offset, zombie_epoch) = claim_partitions(s, "g", [tp])[tp]
    assert zombie_offset is None  # claimed, never committed
    with db.session() as s:
        commit_ingest_state(s, group="g", offsets={tp: 5}, sessions=[], epochs={tp: zombie_epoch})
    with db.session() as s:  # the group moves the partition on: a new owner claims it
        offset, epoch = claim_partitions(s, "g", [tp])[tp]
    assert (offset, epoch) == (5, zombie_epoch + 1)
    with db.session() as s:
        commit_ingest_state(s, group="g", offsets={tp: 9}, sessions=[], epochs={tp: epoch})

    with pytest.raises(FencedError, match=r"video\[3\]"), db.session() as s:
        commit_ingest_state(
            s,
            group="g",
            offsets={tp: 7},
            sessions=[SessionSnapshot("zombie-session", last_seq=4)],
            epochs={tp: zombie_epoch},
        )
    with db.session() as s:  # nothing of the refused commit was written
        assert s.get(ShoppingSession, "zombie-session") is None
        row = s.get(storage.PartitionOffset, ("g", "video", 3))
        assert row is not None and (row.next_offset, row.owner_epoch) == (9, epoch)
    db.dispose()
