"""The ingest engine on the embedded default (SQLite, file source): exactness and recovery."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from app import db as database_ops
from app.db import Database
from app.ingest import FileSource, IngestEngine
from app.model_runtime import load_model
from app.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, tiny_checkpoint: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "data", checkpoint_path=str(tiny_checkpoint), device="cpu")
    database_ops.upgrade(s)
    return s


def ingest(settings: Settings, videos: list[Path], *, chunk_seconds: float = 3.0, **run):
    database = Database(settings)
    closed: list[str] = []
    source = FileSource([(v, v.stem) for v in videos], chunk_seconds=chunk_seconds)
    engine = IngestEngine(
        settings, database, load_model(settings), source, on_session_closed=closed.append
    )
    stats = engine.run(**({"until_idle_s": 0.3} | run))
    database.dispose()
    return stats, closed


def test_memories_equal_populate_on_the_same_frames(
    settings, synth_videos, reference_memory, stored_memory, cart_cells_of
) -> None:
    stats, closed = ingest(settings, synth_videos)
    assert sorted(closed) == sorted(v.stem for v in synth_videos)
    assert stats.dead_letters == 0 and stats.duplicates == 0
    fps = load_model(settings).net.cfg.fps
    for video in synth_videos:
        memory, snap = stored_memory(settings, video.stem)
        assert snap.status == "closed"
        assert memory.equal(reference_memory(video)), video.stem
        assert snap.frames_seen == int(reference_memory(video).frames_seen[0])
        # the cart band of every memory step is stored beside the memory, as the frames give it
        cells = cart_cells_of(settings, video.stem)
        assert cells is not None and len(cells) == snap.frames_seen
        assert np.array_equal(cells, cart_cells_of.reference(video, fps, settings.cart_band_top))


def test_a_cart_band_top_of_one_keeps_no_band(
    settings, synth_videos, stored_memory, cart_cells_of
) -> None:
    ingest(dataclasses.replace(settings, cart_band_top=1.0), synth_videos[:1])
    memory, _ = stored_memory(settings, synth_videos[0].stem)
    assert memory is not None and cart_cells_of(settings, synth_videos[0].stem) is None


def test_stopping_anywhere_and_resuming_gives_the_same_memories(
    settings,
    synth_videos,
    reference_memory,
    stored_memory,
    reference_thumbnails,
    stored_thumbnails,
    cart_cells_of,
) -> None:
    # few thumbnails allowed: each 30 s session is thinned twice, across the restarts
    settings = dataclasses.replace(settings, evidence_max_frames=8)
    # a commit after every few records, then a new engine (a restart) picks up from it
    restarts = 0
    while ingest(settings, synth_videos, max_messages=7)[0].applied:
        restarts += 1
        assert restarts < 30, "ingest never ran out of records"
    assert restarts > 3
    fps = load_model(settings).net.cfg.fps
    for video in synth_videos:
        memory, snap = stored_memory(settings, video.stem)
        assert snap.status == "closed" and memory.equal(reference_memory(video))
        kept = stored_thumbnails(settings, video.stem)
        assert kept == reference_thumbnails(video, settings, fps), video.stem
        assert 4 <= len(kept) <= 8 and snap.pending_info["evidence_step"] == 4
        # the clips replayed after each restart keep their cart band once, in step order
        cells = cart_cells_of.reference(video, fps, settings.cart_band_top)
        assert np.array_equal(cart_cells_of(settings, video.stem), cells), video.stem


def test_a_pool_smaller_than_the_sessions_evicts_and_reloads_exactly(
    settings, synth_videos, reference_memory, stored_memory, cart_cells_of
) -> None:
    # the file source interleaves nothing, so cut chunks small and allow one live session:
    # every new session forces the previous one out to the database and back
    small = dataclasses.replace(settings, max_live_sessions=1)
    _, closed = ingest(small, synth_videos, chunk_seconds=1.0)
    assert len(closed) == len(synth_videos)
    fps = load_model(settings).net.cfg.fps
    for video in synth_videos:
        memory, _ = stored_memory(small, video.stem)
        assert memory.equal(reference_memory(video))
        cells = cart_cells_of.reference(video, fps, settings.cart_band_top)
        assert np.array_equal(cart_cells_of(small, video.stem), cells), video.stem


def test_replaying_the_same_files_changes_nothing(settings, synth_videos, stored_memory) -> None:
    ingest(settings, synth_videos[:1])
    before, _ = stored_memory(settings, synth_videos[0].stem)
    # a second group replays every message from offset 0: all of it is already absorbed
    again = dataclasses.replace(settings)
    database = Database(again)
    source = FileSource(
        [(synth_videos[0], synth_videos[0].stem)], group="files-replay", chunk_seconds=3.0
    )
    stats = IngestEngine(again, database, load_model(again), source).run(until_idle_s=0.3)
    database.dispose()
    after, _ = stored_memory(settings, synth_videos[0].stem)
    assert stats.duplicates == stats.applied > 0 and stats.dead_letters == 0
    assert after.equal(before)


def test_backpressure_pauses_and_resumes_without_losing_records(
    settings, synth_videos, reference_memory, stored_memory
) -> None:
    # one record per poll: the decode queue (4 records) fills and pauses the source often;
    # a commit every round and a tiny idle limit: paused or saving is not being idle
    tight = dataclasses.replace(settings, ingest_batch_records=1, commit_interval_s=0.01)
    stats, closed = ingest(tight, synth_videos[:2], chunk_seconds=2.0, until_idle_s=0.02)
    assert len(closed) == 2 and stats.dead_letters == 0
    for video in synth_videos[:2]:
        memory, _ = stored_memory(tight, video.stem)
        assert memory.equal(reference_memory(video))


def test_a_worker_fenced_off_its_partition_writes_nothing_and_lets_go(
    settings, synth_videos, reference_memory, stored_memory
) -> None:
    """A stalled worker whose partition the group gave to another (a zombie) must not
    overwrite the new owner's commit when it wakes up."""
    video = synth_videos[0]

    def engine() -> tuple[IngestEngine, Database]:
        database = Database(settings)
        source = FileSource([(video, video.stem)], chunk_seconds=2.0)
        return IngestEngine(settings, database, load_model(settings), source), database

    zombie, zombie_db = engine()
    zombie.run(max_messages=3)  # committed at offset 3; then it stalls
    owner, owner_db = engine()
    owner.run(max_messages=4)  # claims the partition (a newer epoch), reads 3..6, saves
    _, saved_owner = stored_memory(settings, video.stem)

    for session in zombie.sessions.values():  # the zombie wakes with unsaved work ...
        session.dirty = True
    zombie.commit()  # ... and is refused: it lets the partition and its sessions go
    assert zombie.stats.fenced_partitions == 1
    assert not zombie.sessions and not zombie.positions and not zombie.epochs
    _, after = stored_memory(settings, video.stem)
    assert after == saved_owner  # every field and array as the owner stored them

    # the rightful owner carries on from its own commit to the exact memory
    rest, rest_db = engine()
    rest.run(until_idle_s=0.3)
    final, snap = stored_memory(settings, video.stem)
    assert snap.status == "closed" and final.equal(reference_memory(video))
    for database in (zombie_db, owner_db, rest_db):
        database.dispose()


def test_a_file_source_gives_each_session_its_own_start_payload(synth_videos) -> None:
    import json

    source = FileSource(
        [(synth_videos[0], "a"), (synth_videos[1], "b")],
        start_info={"store_id": "shared"},
        start_infos={"b": {"candidate_skus": ["S002-0001"]}},
    )
    source.bind(lambda _tps: None, lambda _tps: None)
    starts = {}
    for record in source.poll(0.0, 10_000):
        headers = dict(record.headers)
        if headers.get("type") == b"session_start":
            starts[record.key.decode()] = json.loads(record.value or b"{}")
    assert starts["a"].get("store_id") == "shared"
    assert starts["b"].get("candidate_skus") == ["S002-0001"] and "store_id" not in starts["b"]


def test_a_backlog_read_faster_than_real_time_is_committed_every_few_clips(
    settings, synth_videos, reference_memory, stored_memory
) -> None:
    """A file (or a caught-up partition) is read far faster than real time: commits come
    once a session has written ``memory_save_clips`` clips, not only by the clock, so its
    frames do not pile up until the next interval; the memory is the same."""
    by_clock_only = dataclasses.replace(settings, commit_interval_s=3600.0, memory_save_clips=1)
    stats, closed = ingest(by_clock_only, synth_videos[:1])
    assert closed == [synth_videos[0].stem]
    assert stats.clips >= 2
    assert stats.commits >= stats.clips  # one as each clip is written, and the last
    memory, _ = stored_memory(by_clock_only, synth_videos[0].stem)
    assert memory.equal(reference_memory(synth_videos[0]))


def test_sessions_sharing_backbone_calls_get_the_memories_they_get_alone(
    settings, synth_videos, stored_memory, tmp_path, monkeypatch
) -> None:
    """Clips of several sessions in one fixed-shape backbone call, in bf16 (the CUDA
    default, run on CPU here): each session's memory is the one it gets ingested alone,
    and the same after a restart replays it in other company."""
    shared = dataclasses.replace(settings, backbone_batch_clips=2, backbone_autocast="bf16")
    sessions_per_call: list[int] = []
    real_init = IngestEngine.__init__

    def spying(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        real = self.net.encode_clips

        def counting(clips, run):
            sessions_per_call.append(len(clips))
            assert run.batch_frames == 2 * self.cfg.clip_frames and run.autocast == "bf16"
            return real(clips, run)

        self.net.encode_clips = counting

    monkeypatch.setattr(IngestEngine, "__init__", spying)
    ingest(shared, synth_videos)
    # clips of several sessions went through one call; how many depends on which of the
    # decode pool's chunks are ready when the main thread runs the backbone (all three on a
    # quiet machine, two when another process holds a core)
    assert max(sessions_per_call) >= 2, sessions_per_call
    restarted = dataclasses.replace(shared, data_dir=tmp_path / "restarted")
    database_ops.upgrade(restarted)
    while ingest(restarted, synth_videos, max_messages=5)[0].applied:
        pass
    monkeypatch.undo()
    for video in synth_videos:
        alone = dataclasses.replace(shared, data_dir=tmp_path / video.stem)
        database_ops.upgrade(alone)
        ingest(alone, [video])
        memory, _ = stored_memory(shared, video.stem)
        assert memory.equal(stored_memory(alone, video.stem)[0]), video.stem
        assert memory.equal(stored_memory(restarted, video.stem)[0]), video.stem


def test_a_write_takes_at_most_max_sessions_per_write_and_no_memory_changes(
    settings, synth_videos, reference_memory, stored_memory, monkeypatch
) -> None:
    sizes: list[int] = []
    real_write = IngestEngine._write

    def recording(self, sessions, clips, **kwargs):
        sizes.append(len(sessions))
        return real_write(self, sessions, clips, **kwargs)

    monkeypatch.setattr(IngestEngine, "max_sessions_per_write", 2)
    monkeypatch.setattr(IngestEngine, "_write", recording)
    ingest(settings, synth_videos)  # three sessions, ready together
    assert max(sizes) == 2 and sizes.count(2) >= 1
    for video in synth_videos:
        memory, _ = stored_memory(settings, video.stem)
        assert memory.equal(reference_memory(video)), video.stem


@pytest.mark.parametrize("memory_size", [512, 128])
def test_sessions_stored_under_another_memory_size_go_on_under_this_one(
    settings, synth_videos, stored_memory, tmp_path, memory_size, caplog
) -> None:
    """A checkpoint of another m takes over live sessions (an upgrade, a rollback): a
    smaller stored memory gets empty slots, a larger one is sampled down; no clip is lost
    and every session closes with this model's m."""
    from model.resize import resize_checkpoint

    before = dataclasses.replace(settings, memory_save_clips=1, commit_interval_s=0.001)
    stems = [v.stem for v in synth_videos]
    live: list[str] = []
    while not live:  # until a session's m = 256 memory is stored and it has more to come
        assert ingest(before, synth_videos, max_messages=5)[0].applied, "every session ended"
        for stem in stems:
            try:
                memory, snap = stored_memory(before, stem)
            except AssertionError:  # not started yet
                continue
            if memory is not None and snap.status != "closed":
                assert memory.size == 256
                live.append(stem)
    other = resize_checkpoint(
        Path(settings.checkpoint_path), tmp_path / f"m{memory_size}", memory_size
    )
    after = dataclasses.replace(before, checkpoint_path=str(other))
    with caplog.at_level("WARNING", logger="cartmem.ingest"):
        stats, closed = ingest(after, synth_videos)
    assert stats.clips_lost == 0 and stats.dead_letters == 0
    assert set(live) <= set(closed)
    for stem in stems:
        memory, snap = stored_memory(after, stem)
        assert snap.status == "closed" and memory.size == memory_size, stem
        assert memory.in_time_order()
    assert f"this model keeps {memory_size}" in caplog.text
