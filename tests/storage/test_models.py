"""The models on SQLite (the embedded default); the PostgreSQL twin is in tests/integration."""

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import storage
from storage import (
    Answer,
    DeadLetter,
    MemoryArray,
    Query,
    SessionMemory,
    ShoppingSession,
)


def test_memory_arrays_keep_bytes_dtype_and_shape_exactly(db: Session) -> None:
    tokens = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float16)
    db.add(ShoppingSession(id="s1"))
    db.add(
        SessionMemory(
            session_id="s1",
            frames_seen=12,
            model_version="tiny@abc",
            arrays=[
                MemoryArray(
                    part="memory",
                    name="tokens",
                    dtype=str(tokens.dtype),
                    shape=list(tokens.shape),
                    data=tokens.tobytes(),
                ),
            ],
        )
    )
    db.commit()
    db.expunge_all()
    row = db.get(SessionMemory, "s1")
    assert row is not None and row.frames_seen == 12
    (array,) = row.arrays
    restored = np.frombuffer(array.data, dtype=array.dtype).reshape(array.shape)
    assert restored.dtype == np.float16 and np.array_equal(restored, tokens)


def test_deleting_a_session_removes_its_memory(db: Session) -> None:
    db.add(ShoppingSession(id="s1"))
    db.add(
        SessionMemory(
            session_id="s1",
            model_version="v",
            arrays=[MemoryArray(part="memory", name="t", dtype="uint8", shape=[1], data=b"\x01")],
        )
    )
    db.commit()
    db.execute(sa.delete(ShoppingSession).where(ShoppingSession.id == "s1"))
    db.commit()
    assert db.scalar(sa.select(sa.func.count()).select_from(MemoryArray)) == 0


def test_a_query_has_at_most_one_answer(db: Session) -> None:
    q = Query(session_id="s1", kind="activity", params={"sku": "A"})
    db.add(q)
    db.flush()
    assert q.status == "pending" and q.attempts == 0
    db.add(Answer(query_id=q.id, payload={"x": 1}, model_version="v"))
    db.flush()
    db.add(Answer(query_id=q.id, payload={"x": 2}, model_version="v"))
    with pytest.raises(IntegrityError):
        db.flush()


def test_check_constraints_reject_unknown_kinds(db: Session) -> None:
    db.add(Query(session_id="s1", kind="colour", params={}))
    with pytest.raises(IntegrityError, match="ck_queries_kind_valid"):
        db.flush()


def test_a_dead_letter_is_recorded_once_per_offset(db: Session) -> None:
    def letter() -> DeadLetter:
        return DeadLetter(
            topic="t", partition=0, offset=7, reason="r", size=1, sha256="0" * 64, head=b"x"
        )

    db.add(letter())
    db.flush()
    db.add(letter())
    with pytest.raises(IntegrityError):
        db.flush()


def test_catalog_functions(db: Session) -> None:
    storage.add_product(db, sku="B", name="Beans", image_png=b"png", image_size=(4, 3))
    storage.add_product(db, sku="A", name="Apples", image_png=b"png2", image_size=(2, 2))
    assert [p.sku for p in storage.list_products(db)] == ["A", "B"]
    with pytest.raises(storage.AlreadyExistsError):
        storage.add_product(db, sku="A", name="Again", image_png=b"p", image_size=(1, 1))
    storage.add_product(db, sku="A", name="Again", image_png=b"p", image_size=(1, 1), replace=True)
    assert storage.get_product(db, "A").name == "Again"
    with pytest.raises(storage.RowNotFoundError):
        storage.get_product(db, "Z")


def test_session_summary_counts(db: Session) -> None:
    db.add(ShoppingSession(id="s1", store_id="st"))
    db.add_all([Query(session_id="s1", kind="time", params={}) for _ in range(3)])
    db.add(storage.Scan(session_id="s1", sku="A", qty=2))
    db.commit()
    summary = storage.get_session(db, "s1")
    assert (summary.queries, summary.scans, summary.dead_letters, summary.frames_seen) == (
        3,
        1,
        0,
        0,
    )
    assert [s.session.id for s in storage.list_sessions(db)] == ["s1"]
    with pytest.raises(storage.RowNotFoundError):
        storage.get_session(db, "nope")
