"""A session's frames between commits: what a commit stores, what a failed message leaves,
and what piles up while commits fail."""

from __future__ import annotations

import numpy as np

from app.ingest.session import LiveSession

FPS = 1.0


def feed(session: LiveSession, seconds: int, start_s: int, seed: int) -> None:
    """``seconds`` of one frame a second from ``start_s`` through the session's one camera."""
    camera = session.cameras.get("cam") or session.cameras.add("cam")
    frames = np.random.default_rng(seed).integers(0, 256, (seconds, 4, 6, 3), dtype=np.uint8)
    times = 1_000_000 * (start_s + np.arange(seconds, dtype=np.int64))
    session.cameras.push(camera, frames, times, 1_000_000)
    session.add_samples(session.cameras.combine())


def stored_steps(snapshot) -> list[int]:
    out = []
    for blob in snapshot.pending:
        if blob.name.startswith("frames."):
            first = int(blob.name.split(".")[1])
            out += list(range(first, first + blob.shape[0]))
    return out


def test_a_rolled_back_message_leaves_no_frame_for_the_next_commit() -> None:
    session = LiveSession("s", FPS)
    feed(session, 5, 0, seed=1)
    point = session.savepoint()
    feed(session, 5, 5, seed=2)  # a message whose frames were taken, then it failed
    session.rollback(point)
    feed(session, 3, 5, seed=3)  # the corrected message
    snap = session.snapshot(None, "v")
    assert stored_steps(snap) == list(range(session.cameras.next_step))


def test_frames_do_not_pile_up_while_commits_that_store_the_memory_fail() -> None:
    session = LiveSession("s", FPS)
    feed(session, 4, 0, seed=4)
    session.snapshot(None, "v")
    session.saved()
    for i in range(20):  # clips are written, and every commit fails
        feed(session, 16, 4 + 16 * i, seed=10 + i)
        session.take_clip(16)
        session.unsaved_clips.append(16)
        due = session.memory_due(every_clips=4)
        snap = session.snapshot({"tokens": np.zeros(1)} if due else None, "v")
        # never more than four clips and the pending frames wait for a commit
        assert len(session.fresh) <= 4 * 16 + len(session.pending) + 16, i
        if due:  # what the memory holds is never stored as frames again
            assert min(stored_steps(snap), default=session.pending_start) >= (session.pending_start)
