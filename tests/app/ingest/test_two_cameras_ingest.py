"""Two cameras publishing one session, each with its own seq from 0: nothing is a duplicate or
goes back in time, and the memory is the one the model writes for the two videos side by
side, however the run is cut by commits."""

from __future__ import annotations

import dataclasses
from itertools import zip_longest

import pytest

from app import db as database_ops
from app.db import Database
from app.ingest.records import Record
from app.publish import Message, session_messages
from app.settings import Settings
from tests.app.ingest.conftest import ingest

TOPIC = "two-cameras"


@pytest.fixture
def settings(commit_often_settings: Settings) -> Settings:
    return commit_often_settings


def interleaved(*cameras: list[Message]) -> list[Record]:
    """The cameras' messages as two publishers running side by side put them on the topic."""
    merged = [m for group in zip_longest(*cameras) for m in group if m is not None]
    return [Record(TOPIC, 0, i, m.key, tuple(m.headers), m.value) for i, m in enumerate(merged)]


def test_two_cameras_make_one_memory_of_both_side_by_side(
    settings, synth_videos, side_by_side_memory, reference_memory, stored_memory, list_source
) -> None:
    front, basket = synth_videos[0], synth_videos[1]
    records = interleaved(
        list(session_messages(front, "two", camera="front", chunk_seconds=3.0)),
        list(session_messages(basket, "two", camera="basket", chunk_seconds=2.0)),
    )
    stats = ingest(settings, records, list_source)
    assert (stats.dead_letters, stats.duplicates) == (0, 0)
    memory, snap = stored_memory(settings, "two")
    assert snap.status == "closed" and snap.losses == () and snap.seq_gaps == ()
    assert set(snap.end_info["cameras"]) == {"front", "basket"}
    assert memory.equal(side_by_side_memory(front, basket))
    # and not what either camera alone would have written
    assert not memory.equal(reference_memory(front))


def test_a_crash_between_commits_replays_to_the_same_memory(
    settings, synth_videos, stored_memory, list_source
) -> None:
    records = interleaved(
        list(session_messages(synth_videos[0], "two", camera="front", chunk_seconds=3.0)),
        list(session_messages(synth_videos[2], "two", camera="basket", chunk_seconds=3.0)),
    )
    reference = dataclasses.replace(settings, data_dir=settings.data_dir / "ref")
    database_ops.upgrade(reference)
    ingest(reference, records, list_source)
    want, want_snap = stored_memory(reference, "two")

    # stopped after a third, then after two thirds (each run commits what it did), then on
    for stop in (len(records) // 3, 2 * len(records) // 3):
        ingest(settings, records, list_source, max_messages=stop - _applied(settings))
    ingest(settings, records, list_source)
    got, snap = stored_memory(settings, "two")
    assert got.equal(want) and snap.frames_seen == want_snap.frames_seen


def _applied(settings: Settings) -> int:
    import sqlalchemy as sa

    from storage.models import PartitionOffset

    database = Database(settings)
    try:
        with database.session() as db:
            return int(db.scalar(sa.select(PartitionOffset.next_offset)) or 0)
    finally:
        database.dispose()


def test_an_ended_camera_and_a_fifth_camera_are_dead_letters(
    settings, synth_videos, stored_memory, list_source
) -> None:
    video = synth_videos[0]
    front = list(session_messages(video, "many", camera="front", chunk_seconds=5.0))
    others = [
        list(session_messages(video, "many", camera=f"cam-{i}", chunk_seconds=5.0))[:2]
        for i in range(4)  # cam-0 .. cam-2 are taken (four with the front); cam-3 is not
    ]
    after_end = front[1]  # the front camera's first chunk again, with a new seq, after its end
    resent = Message(
        after_end.key,
        [(n, b"99" if n == "seq" else v) for n, v in after_end.headers],
        after_end.value,
    )
    records = interleaved(front[:-1], *others) + interleaved([front[-1], resent])
    records = [Record(TOPIC, 0, i, r.key, r.headers, r.value) for i, r in enumerate(records)]
    stats = ingest(settings, records, list_source)
    assert stats.dead_letters == 3  # cam-3's start and chunk, the front camera's late chunk
    _memory, snap = stored_memory(settings, "many")
    assert snap.status == "open"  # cam-0 .. cam-2 have not ended
