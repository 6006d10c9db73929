"""Publishing: how tall re-encoded video may be, from the settings or the command line."""

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli import main
from app.contract import MessageType
from app.errors import SettingsError
from app.publish import PublishReport, session_messages
from app.publish_live import LiveOptions, LiveState, is_live_source, live_messages
from app.settings import Settings
from app.video import decode_chunk

LIMITS = {"max_frame_pixels": 10_000_000, "max_seconds": 30.0}


def test_reencoded_chunks_are_at_most_max_height_rows(ffmpeg_video) -> None:
    pattern = "testsrc2=size=128x96:rate=10:duration=1"
    path = ffmpeg_video("cam.mkv", "-f", "lavfi", "-i", pattern, "-c:v", "mjpeg")  # re-encoded
    messages = list(session_messages(path, "s-1", chunk_seconds=5.0, max_height=48))
    (chunk,) = [m for m in messages if m.t0 is not None]
    assert chunk.reencoded
    assert dict(chunk.headers)["type"] == MessageType.CHUNK.value.encode()
    content_type = dict(chunk.headers)["content-type"].decode()
    assert decode_chunk(chunk.value, content_type, **LIMITS).frames.shape == (10, 48, 64, 3)


def test_the_max_height_setting() -> None:
    assert Settings().publish_max_height == 480
    assert Settings.from_env({"CARTMEM_PUBLISH_MAX_HEIGHT": "720"}).publish_max_height == 720
    with pytest.raises(SettingsError, match="CARTMEM_PUBLISH_MAX_HEIGHT must be at least 2"):
        Settings(publish_max_height=1)


@pytest.mark.parametrize(("args", "expected"), [((), None), (("--max-height", "720"), 720)])
def test_publish_passes_max_height_on(
    args: tuple[str, ...],
    expected: int | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARTMEM_DATA_DIR", str(tmp_path / "data"))
    video = tmp_path / "cam.mp4"
    video.write_bytes(b"not read: publish_video is replaced")
    seen: dict[str, Any] = {}

    def publish_video(settings: Settings, path: Path, session_id: str, **kwargs: Any):
        seen.update(kwargs)
        return PublishReport(session_id, settings.topic, 1, 1, 0.0, 10)

    monkeypatch.setattr("app.cli.publish.publish_video", publish_video)
    result = CliRunner().invoke(main, ["publish", str(video), "--session", "s-1", *args])
    assert result.exit_code == 0, result.output
    assert seen["max_height"] == expected  # None: publish_video takes the setting


def test_publish_refuses_a_max_height_under_two_rows(tmp_path: Path) -> None:
    video = tmp_path / "cam.mp4"
    video.write_bytes(b"")
    result = CliRunner().invoke(
        main, ["publish", str(video), "--session", "s", "--max-height", "1"]
    )
    assert result.exit_code == 2 and "--max-height" in result.output


def test_publish_tells_a_missing_file_from_a_live_url(tmp_path: Path) -> None:
    missing = CliRunner().invoke(main, ["publish", str(tmp_path / "nope.mp4"), "--session", "s"])
    assert missing.exit_code == 2 and "not a video file or a live URL" in missing.output
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    until = CliRunner().invoke(main, ["publish", str(video), "--session", "s", "--until", "5"])
    assert until.exit_code == 2 and "--until is for live sources" in until.output


@pytest.mark.parametrize(
    ("source", "live"),
    [
        ("rtsp://cam.local:554/stream1", True),
        ("RTSP://cam.local/stream1", True),
        ("https://cdn.example/store/cam.m3u8", True),
        ("srt://10.0.0.5:9000", True),
        ("/dev/video0", True),
        ("videos/session.mp4", False),
        ("ftp://example/x.mp4", False),
    ],
)
def test_live_sources_are_urls_and_video_devices(source: str, live: bool) -> None:
    assert is_live_source(source) is live


def test_a_live_source_that_never_opens_still_ends_its_session() -> None:
    """A camera that is down all along: retried until the publisher stops, then the session
    ends with the outage on record and no chunk."""
    clock = {"t": 0.0}

    def sleep(seconds: float) -> None:
        clock["t"] += seconds

    state = LiveState()
    options = LiveOptions(until_s=3.0, open_timeout_s=0.5, read_timeout_s=0.5)
    sent = list(
        live_messages(
            "rtsp://127.0.0.1:9/none",  # port 9 (discard): nothing answers RTSP there
            "s-down",
            options,
            state,
            clock=lambda: clock["t"],
            sleep=sleep,
        )
    )
    kinds = [dict(m.headers)["type"] for m in sent]
    assert kinds == [b"session_start", b"session_end"]
    assert state.ended_by == "until" and state.chunks == 0
    (outage,) = state.outages
    assert outage.back_at_s is None and "cannot open the camera" in outage.reason
