"""A session's cart band through commits: stored with the memory, resumed from it, and
dropped rather than misaligned when a step lacks its cells."""

from __future__ import annotations

import numpy as np

from app.array_blobs import array_of
from app.ingest.session import LiveSession, memory_arrays
from app.video.cart_band import ARRAY_NAME

MEMORY = {"tokens": np.zeros((2, 3), dtype=np.float32)}


def _clip(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 64, 96, 3), dtype=np.uint8)


def _written(session: LiveSession, clip: np.ndarray) -> None:
    """What the engine does once a clip is in the memory."""
    session.frames_seen += len(clip)
    session.keep_cart_cells(clip)


def _stored_cells(snapshot) -> np.ndarray | None:
    blobs = [b for b in snapshot.band if b.name == ARRAY_NAME]
    if not blobs:
        return None
    return array_of(blobs[0])


def test_the_band_is_stored_with_the_memory_and_resumed_from_it() -> None:
    session = LiveSession("s", 1.0)
    _written(session, _clip(4, seed=1))
    _written(session, _clip(3, seed=2))
    snap = session.snapshot(MEMORY, "v")
    cells = _stored_cells(snap)
    assert cells is not None and len(cells) == 7
    assert set(memory_arrays(snap)) == set(MEMORY)  # the memory itself does not carry it
    resumed = LiveSession.from_snapshot(snap, 1.0)
    _written(resumed, _clip(2, seed=3))
    again = _stored_cells(resumed.snapshot(MEMORY, "v"))
    assert again is not None and len(again) == 9 and np.array_equal(again[:7], cells)


def test_a_commit_without_the_memory_stores_no_band() -> None:
    session = LiveSession("s", 1.0)
    _written(session, _clip(4, seed=1))
    assert _stored_cells(session.snapshot(None, "v")) is None


def test_a_memory_stored_without_a_band_keeps_none_after() -> None:
    # stored before the band was kept: its first steps have none, so none is kept
    old = LiveSession("s", 1.0, cart_cells=None)
    _written(old, _clip(4, seed=1))
    resumed = LiveSession.from_snapshot(old.snapshot(MEMORY, "v"), 1.0)
    assert resumed.cart_cells is None
    _written(resumed, _clip(2, seed=2))
    assert _stored_cells(resumed.snapshot(MEMORY, "v")) is None


def test_a_step_without_cells_drops_the_band_instead_of_misaligning_it() -> None:
    session = LiveSession("s", 1.0)
    _written(session, _clip(4, seed=1))
    session.frames_seen += 1  # a step the band missed
    assert _stored_cells(session.snapshot(MEMORY, "v")) is None
    assert session.cart_cells is None
