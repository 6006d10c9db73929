"""The memory's version moves when its arrays are written, not with every commit."""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage.answering import session_states
from storage.ingest_state import ArrayBlob, SessionSnapshot, commit_ingest_state

MEMORY = (ArrayBlob("tokens", "float32", (1, 2), b"\0" * 8),)


def commit(db: Session, snap: SessionSnapshot, offset: int) -> None:
    commit_ingest_state(db, group="g", offsets={("t", 0): offset}, sessions=[snap])
    db.commit()


def frames(step: int) -> tuple[ArrayBlob, ...]:
    return (ArrayBlob(f"frames.{step}", "uint8", (1, 1, 1, 3), b"\1\2\3"),)


def version(db: Session) -> int | None:
    return session_states(db, ["s"])["s"].memory_version


def test_only_a_commit_that_stores_the_memory_raises_its_version(db: Session) -> None:
    commit(db, SessionSnapshot("s"), 1)
    assert version(db) is None  # no clip written yet: no memory row

    written = SessionSnapshot("s", model_version="v", frames_seen=16, memory=MEMORY)
    commit(db, written, 2)
    assert version(db) == 1
    for step in (16, 17, 18):  # clips' frames only: the stored memory is the same
        only_frames = SessionSnapshot("s", model_version="v", frames_seen=16, pending=frames(step))
        commit(db, only_frames, step)
        assert version(db) == 1
    commit(db, written, 20)
    assert version(db) == 2
