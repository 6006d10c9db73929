"""Records a store system should not send, among the ones it should: each is set aside on
record, and the session around it ends exactly as if it had been ingested alone."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from app import contract
from app import db as database_ops
from app.contract import MessageType
from app.db import Database
from app.ingest import IngestEngine
from app.ingest.records import Record
from app.model_runtime import load_model
from app.publish import Message, session_messages
from app.settings import Settings
from storage import ShoppingSession
from tests.app.ingest.conftest import ingest

TOPIC = "hostile"


@pytest.fixture
def settings(tmp_path: Path, tiny_checkpoint: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "data", checkpoint_path=str(tiny_checkpoint), device="cpu")
    database_ops.upgrade(s)
    return s


def as_records(messages: list[Message | tuple[bytes, list, bytes]]) -> list[Record]:
    records = []
    for offset, m in enumerate(messages):
        key, headers, value = (m.key, m.headers, m.value) if isinstance(m, Message) else m
        records.append(Record(TOPIC, 0, offset, key, tuple(headers), value))
    return records


def chunk(seq: int, t0: float, value: bytes, session: bytes = b"v-1") -> tuple:
    headers = contract.headers_for(
        MessageType.CHUNK, seq=seq, camera="cam-0", t0=t0, content_type="video/mp2t"
    )
    return (session, headers, value)


def test_chunks_far_past_the_video_are_dead_letters_and_the_session_is_exact(
    settings, synth_videos, reference_memory, stored_memory, list_source
) -> None:
    video = synth_videos[0]
    messages: list = list(session_messages(video, "v-1", chunk_seconds=3.0))
    real = messages[2].value
    # a 30 s session: chunks claiming to start at 600 s or later, with unused seqs
    stray = [chunk(900 + i, t0, real) for i, t0 in enumerate([600.0, 1e6])]
    messages = messages[:3] + stray + messages[3:]
    stats = ingest(settings, as_records(messages), list_source)
    assert stats.dead_letters == 2
    memory, snap = stored_memory(settings, "v-1")
    assert snap.status == "closed" and snap.losses == ()
    assert memory.equal(reference_memory(video))


def test_repeated_headers_the_contract_does_not_use_are_ignored(
    settings, synth_videos, reference_memory, stored_memory, list_source
) -> None:
    video = synth_videos[1]
    traced = [
        (m.key, [*m.headers, ("x-trace", b"1"), ("x-trace", b"2")], m.value)
        for m in session_messages(video, "v-2", chunk_seconds=3.0)
    ]
    stats = ingest(settings, as_records(traced), list_source)
    assert stats.dead_letters == 0
    memory, _ = stored_memory(settings, "v-2")
    assert memory.equal(reference_memory(video))


def test_a_message_that_fails_to_apply_leaves_its_session_untouched(
    settings, synth_videos, reference_memory, stored_memory, list_source, monkeypatch
) -> None:
    video = synth_videos[0]
    messages = list(session_messages(video, "v-3", chunk_seconds=3.0))
    bad = messages[2]
    poisoned = (bad.key, [*bad.headers[:2], ("seq", b"77"), *bad.headers[3:]], bad.value)
    records = as_records([*messages[:3], poisoned, *messages[3:]])

    from app.ingest.session import LiveSession

    real_add = LiveSession.add_samples
    calls = {"n": 0}

    def add_then_fail_on_the_poisoned_one(self, samples):
        real_add(self, samples)  # state changes first, then the failure: it must be undone
        calls["n"] += 1
        if calls["n"] == 3:  # the poisoned copy follows the first two chunks
            raise RuntimeError("frames of an unexpected shape")

    monkeypatch.setattr(LiveSession, "add_samples", add_then_fail_on_the_poisoned_one)
    stats = ingest(settings, records, list_source)
    assert stats.dead_letters == 1
    memory, snap = stored_memory(settings, "v-3")
    assert snap.status == "closed" and snap.last_seq == len(messages) - 1
    assert memory.equal(reference_memory(video))


def test_a_session_that_goes_quiet_is_closed_with_the_reason(
    settings, synth_videos, stored_memory, list_source
) -> None:
    messages = list(session_messages(synth_videos[0], "q-1", chunk_seconds=3.0))[:4]
    quick = dataclasses.replace(settings, session_idle_timeout_s=0.5)
    stats = ingest(quick, as_records(messages), list_source, until_idle_s=2.0)
    assert stats.sessions_expired == 1 and stats.sessions_closed == 1
    memory, snap = stored_memory(settings, "q-1")
    assert snap.status == "closed" and snap.end_info is not None
    assert snap.end_info["closed_by"] == "cartmem"
    assert "CARTMEM_SESSION_IDLE_TIMEOUT_S" in snap.end_info["reason"]
    assert int(memory.frames_seen[0]) > 0  # its video up to then is in the memory


def test_a_stored_quiet_session_is_closed_by_the_next_worker(
    settings, synth_videos, stored_memory, list_source
) -> None:
    messages = list(session_messages(synth_videos[1], "q-2", chunk_seconds=3.0))[:3]
    ingest(settings, as_records(messages), list_source)  # the default timeout: stays open
    _, snap = stored_memory(settings, "q-2")
    assert snap.status == "open"
    time.sleep(1.5)  # the database's clock must see it unchanged for the timeout
    quick = dataclasses.replace(settings, session_idle_timeout_s=1.0)
    nothing_new = list_source([], topic=TOPIC)
    database = Database(quick)
    try:
        engine = IngestEngine(quick, database, load_model(quick), nothing_new)
        stats = engine.run(until_idle_s=1.5)
    finally:
        database.dispose()
    assert stats.sessions_expired == 1
    _, snap = stored_memory(settings, "q-2")
    assert snap.status == "closed" and snap.end_info["closed_by"] == "cartmem"


def test_a_session_only_dead_letters_named_leaves_no_trace_when_it_goes_quiet(
    settings, synth_videos, list_source
) -> None:
    real = list(session_messages(synth_videos[0], "v-4", chunk_seconds=3.0))[1].value
    stray = [chunk(1, 600.0, real, session=b"ghost"), chunk(2, 900.0, real, session=b"ghost")]
    quick = dataclasses.replace(settings, session_idle_timeout_s=0.5)
    stats = ingest(quick, as_records(stray), list_source, until_idle_s=1.5)
    assert stats.dead_letters == 2 and stats.sessions_expired == 0
    database = Database(settings)
    try:
        with database.session() as db:
            assert db.get(ShoppingSession, "ghost") is None
    finally:
        database.dispose()


def test_a_clip_the_model_cannot_write_is_a_recorded_loss_and_its_batch_mates_are_exact(
    settings, synth_videos, reference_memory, stored_memory, list_source, monkeypatch
) -> None:
    import itertools

    good, bad = synth_videos[0], synth_videos[1]
    streams = [
        session_messages(good, "w-good", chunk_seconds=3.0),
        session_messages(bad, "w-bad", chunk_seconds=3.0),
    ]
    together = [m for pair in itertools.zip_longest(*streams) for m in pair if m is not None]
    real_write = IngestEngine._write

    def fail_for_w_bad(self, sessions, clips, **kwargs):
        if any(s.id == "w-bad" for s in sessions):
            raise RuntimeError("CUDA out of memory")
        return real_write(self, sessions, clips, **kwargs)

    monkeypatch.setattr(IngestEngine, "_write", fail_for_w_bad)
    stats = ingest(settings, as_records(together), list_source)
    assert stats.clips_lost >= 1 and stats.sessions_closed == 2
    memory, _ = stored_memory(settings, "w-good")
    assert memory.equal(reference_memory(good))
    _, snap = stored_memory(settings, "w-bad")
    assert snap.status == "closed" and len(snap.losses) == stats.clips_lost
    assert "could not be written into the memory (RuntimeError" in snap.losses[0]["reason"]
