"""Publishing: how tall re-encoded video may be, from the settings or the command line."""

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli import main
from app.contract import MessageType
from app.errors import SettingsError
from app.publish import PublishReport, session_messages
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
