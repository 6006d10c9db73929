"""The cart band is stored in its own part, written and replaced with the memory."""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage.answering import band_array, memory_arrays
from storage.ingest_state import ArrayBlob, SessionSnapshot, commit_ingest_state, load_session

MEMORY = (ArrayBlob("tokens", "<f4", (1, 2), b"\0" * 8),)


def band(fill: bytes) -> tuple[ArrayBlob, ...]:
    return (ArrayBlob("cart_cells", "<f2", (2,), fill * 4),)


def commit(db: Session, snap: SessionSnapshot, offset: int) -> None:
    commit_ingest_state(db, group="g", offsets={("t", 0): offset}, sessions=[snap])
    db.commit()


def test_the_band_is_written_with_the_memory_and_kept_out_of_its_arrays(db: Session) -> None:
    written = SessionSnapshot(
        "s", model_version="v", frames_seen=2, memory=MEMORY, band=band(b"\1")
    )
    commit(db, written, 1)
    assert [b.name for b in memory_arrays(db, ["s"])["s"]] == ["tokens"]
    stored = band_array(db, "s", "cart_cells")
    assert stored is not None and stored.data == b"\1" * 4
    loaded = load_session(db, "s")
    assert loaded is not None
    assert [b.name for b in loaded.memory] == ["tokens"]
    assert loaded.band == band(b"\1")


def test_a_commit_without_the_memory_leaves_the_band_and_one_with_it_replaces_it(
    db: Session,
) -> None:
    commit(
        db,
        SessionSnapshot("s", model_version="v", frames_seen=2, memory=MEMORY, band=band(b"\1")),
        1,
    )
    # frames only: the memory is unchanged, and so is its band (a band without a memory is
    # not written: it would not match the stored memory's steps)
    commit(db, SessionSnapshot("s", model_version="v", frames_seen=2, band=band(b"\2")), 2)
    stored = band_array(db, "s", "cart_cells")
    assert stored is not None and stored.data == b"\1" * 4
    commit(
        db,
        SessionSnapshot("s", model_version="v", frames_seen=4, memory=MEMORY, band=band(b"\3")),
        3,
    )
    stored = band_array(db, "s", "cart_cells")
    assert stored is not None and stored.data == b"\3" * 4
    # the memory written again without a band (a step lost its cells): none is kept
    commit(db, SessionSnapshot("s", model_version="v", frames_seen=6, memory=MEMORY), 4)
    assert band_array(db, "s", "cart_cells") is None
    assert band_array(db, "unknown", "cart_cells") is None
