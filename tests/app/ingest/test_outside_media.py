"""Video made by other tools, published and ingested end to end (file source, SQLite)."""

import dataclasses
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from app import db as database_ops
from app.db import Database
from app.ingest import FileSource, IngestEngine
from app.ingest.records import Record
from app.model_runtime import load_model
from app.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, tiny_checkpoint: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "data", checkpoint_path=str(tiny_checkpoint), device="cpu")
    database_ops.upgrade(s)
    return s


def make(ffmpeg: str, out: Path, *args: str) -> Path:
    subprocess.run([ffmpeg, "-v", "error", "-y", *args, str(out)], check=True, timeout=300)
    return out


def ingest(settings: Settings, source: FileSource, model=None):
    database = Database(settings)
    closed: list[str] = []
    engine = IngestEngine(
        settings, database, model or load_model(settings), source, on_session_closed=closed.append
    )
    stats = engine.run(until_idle_s=0.3)
    database.dispose()
    return stats, closed


@pytest.mark.slow
def test_an_open_gop_file_reaches_the_memory_whole(
    settings, ffmpeg, stored_memory, tmp_path
) -> None:
    # issue 12: cut at recovery points, 7 of its 8 chunks were dead letters (4 of 30 frames)
    video = make(
        ffmpeg, tmp_path / "opengop.mp4",
        "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30:duration=30",
        "-c:v", "libx264", "-bf", "3", "-g", "60", "-x264-params", "open-gop=1",
        "-pix_fmt", "yuv420p",
    )  # fmt: skip
    stats, closed = ingest(settings, FileSource([(video, "open-gop")]))
    assert stats.dead_letters == 0 and closed == ["open-gop"]
    _, snap = stored_memory(settings, "open-gop")
    assert snap.frames_seen >= 27 and not snap.losses


def test_a_rotated_phone_video_reaches_the_memory_upright(
    settings, rotated_mp4, ffmpeg_frames
) -> None:
    video = rotated_mp4("phone.mp4", "320x240", seconds=4)
    upright = ffmpeg_frames(video, 240, 320)  # as ffmpeg shows it

    model = load_model(settings)
    seen: list[np.ndarray] = []  # the clips the backbone is given, (T, H, W, 3) each
    encode = model.net.encode_clips

    def recording(clips, run):
        seen.extend(np.asarray(clip) for clip in clips)
        return encode(clips, run)

    model.net.encode_clips = recording
    stats, _ = ingest(settings, FileSource([(video, "phone")], chunk_seconds=2.0), model)
    assert stats.dead_letters == 0
    frames = np.concatenate(seen)
    # memory samples at 0, 1, 2, 3 s: source frames 0, 10, 20, 30 (re-encoded, so lossy),
    # portrait, at whatever size ingest decodes to
    count, height, width, _ = frames.shape
    assert count == 4 and height > width
    expected = [
        av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        .reformat(width=width, height=height, interpolation="AREA")
        .to_ndarray()
        for image in upright[::10]
    ]
    error = np.abs(frames.astype(int) - np.stack(expected).astype(int)).mean()
    assert error < 4, error


class _CutShort(FileSource):
    """The file source, with the chunk numbered ``seq`` cut short in transit."""

    def __init__(self, *args, seq: int, keep: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seq, self.keep = str(seq).encode(), keep

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        return [self._cut(r) for r in super().poll(timeout_s, max_records)]

    def _cut(self, record: Record) -> Record:
        if dict(record.headers).get("seq") != self.seq or record.value is None:
            return record
        return dataclasses.replace(record, value=record.value[: int(len(record.value) * self.keep)])


def test_a_truncated_chunk_is_applied_and_its_loss_recorded(
    settings, synth_videos, stored_memory
) -> None:
    video = synth_videos[0]
    source = _CutShort([(video, "cut")], chunk_seconds=3.0, seq=2, keep=0.6)
    stats, closed = ingest(settings, source)
    assert stats.dead_letters == 0 and closed == ["cut"]
    _, snap = stored_memory(settings, "cut")
    (loss,) = snap.losses
    assert loss["seq"] == 2
    assert "partial MPEG-TS packet" in loss["reason"] or "damaged frame" in loss["reason"]


class _Dropped(FileSource):
    """The file source, with the chunk numbered ``seq`` lost in transit."""

    def __init__(self, *args, seq: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seq = str(seq).encode()

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        records = super().poll(timeout_s, max_records)
        return [r for r in records if dict(r.headers).get("seq") != self.seq]


def test_a_lost_chunk_leaves_a_time_gap_on_record(settings, synth_videos, stored_memory) -> None:
    source = _Dropped([(synth_videos[0], "holed")], chunk_seconds=3.0, seq=2)
    stats, closed = ingest(settings, source)
    assert stats.dead_letters == 0 and closed == ["holed"]
    _, snap = stored_memory(settings, "holed")
    (gap,) = snap.losses
    assert gap["seq"] == 3 and "no video from" in gap["reason"]
    assert gap["to_s"] - gap["from_s"] >= 2.0  # about the lost chunk's 3 s
