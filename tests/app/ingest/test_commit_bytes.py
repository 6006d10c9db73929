"""What an ingest commit writes follows what changed: the memory only after a clip changed
it, each pending frame once, and recovery from those commits is still exact."""

from __future__ import annotations

import pytest

from app.ingest import engine as engine_module
from app.ingest.records import Record
from app.publish import session_messages
from app.settings import Settings
from tests.app.ingest.conftest import ingest
from tests.conftest import stored_snapshot


@pytest.fixture
def settings(commit_often_settings: Settings) -> Settings:
    return commit_often_settings


def test_commits_write_the_memory_after_clips_and_each_pending_frame_once(
    settings, synth_videos, reference_memory, stored_memory, list_source, monkeypatch
) -> None:
    written: list = []
    real = engine_module.commit_ingest_state

    def recording(db, **kwargs):
        written.extend(kwargs["sessions"])
        return real(db, **kwargs)

    monkeypatch.setattr(engine_module, "commit_ingest_state", recording)
    video = synth_videos[0]
    messages = list(session_messages(video, "bytes-1", chunk_seconds=2.0))
    records = [Record("t", 0, i, m.key, tuple(m.headers), m.value) for i, m in enumerate(messages)]
    # a worker that stops after each record (and commits): one save per record
    runs = [ingest(settings, records, list_source, max_messages=1) for _ in records]
    clips, memory_frames = sum(r.clips for r in runs), sum(r.memory_frames for r in runs)

    memory, snap = stored_memory(settings, "bytes-1")
    assert memory.equal(reference_memory(video))  # the commits' sum is the whole state
    saves = [s for s in written if s.session_id == "bytes-1"]
    assert len(saves) == len(records) > clips + 2
    with_memory = [s for s in saves if s.memory]
    # the first save (an empty memory) and one per clip at most, not one per commit
    # the memory every CARTMEM_MEMORY_SAVE_CLIPS clips and at the end, not at every commit
    every = settings.memory_save_clips
    assert 1 <= len(with_memory) <= clips // every + 1
    assert sum(r.replayed_clips for r in runs) > 0  # restarts replayed the clips it lacked
    frames = [b for s in saves for b in s.pending if b.name.startswith("frames.")]
    steps = [int(b.name.split(".")[1]) for b in frames]
    counts = [b.shape[0] for b in frames]
    # no frame is written twice (frames a clip took before the next commit are never
    # written at all): each array starts at or after the end of the one before
    assert 0 < sum(counts) <= memory_frames == snap.frames_seen
    assert all(nxt >= step + n for step, n, nxt in zip(steps, counts, steps[1:], strict=False))


def test_a_session_resumed_from_incremental_frames_ends_exact(
    settings, synth_videos, reference_memory, stored_memory, list_source
) -> None:
    video = synth_videos[1]
    messages = list(session_messages(video, "bytes-2", chunk_seconds=1.5))
    records = [Record("t", 0, i, m.key, tuple(m.headers), m.value) for i, m in enumerate(messages)]
    # a fresh engine (a restart) every three records, each resuming from the stored state
    for _ in range(0, len(records) - 3, 3):
        ingest(settings, records, list_source, max_messages=3)
        snap = stored_snapshot(settings, "bytes-2")
        # frames from the first one the stored memory lacks (clips to replay, then pending)
        needed_from = snap.pending_info["pending_start"] - sum(snap.pending_info["unsaved_clips"])
        arrays = [b for b in snap.pending if b.name.startswith("frames.")]
        spans = sorted((int(b.name.split(".")[1]), b.shape[0]) for b in arrays)
        # arrays whose frames the stored memory holds are gone; those left reach the present
        assert all(step + n > needed_from for step, n in spans)
        assert not spans or spans[0][0] <= needed_from
        assert not spans or sum(spans[-1]) == snap.pending_info["next_step"]
    ingest(settings, records, list_source)
    memory, _snap = stored_memory(settings, "bytes-2")
    assert memory.equal(reference_memory(video))
