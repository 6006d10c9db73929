"""Media made by ffmpeg, for the video and ingest tests: what other tools write."""

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest


@pytest.fixture
def ffmpeg_video(ffmpeg: str, tmp_path: Path) -> Callable[..., Path]:
    """Function: (file name, ffmpeg arguments before the output) -> a video made by ffmpeg."""
    import subprocess

    def make(name: str, *args: str) -> Path:
        out = tmp_path / name
        subprocess.run([ffmpeg, "-v", "error", "-y", *args, str(out)], check=True, timeout=120)
        return out

    return make


@pytest.fixture
def rotated_mp4(ffmpeg: str, ffmpeg_video: Callable[..., Path]) -> Callable[..., Path]:
    """Function: (file name, WxH, seconds=2) -> ffmpeg's test pattern at 10 fps in an MP4
    whose display matrix turns it 90 degrees, as phones write them."""
    import subprocess

    def make(name: str, size: str, seconds: float = 2) -> Path:
        pattern = f"testsrc2=size={size}:rate=10:duration={seconds}"
        plain = ffmpeg_video(f"plain-{name}", "-f", "lavfi", "-i", pattern, "-c:v", "libx264")
        out = plain.with_name(name)
        # ffmpeg 6 and later: -display_rotation; ffmpeg 5 still honours the rotate tag
        for args in (
            ["-display_rotation", "90", "-i", str(plain)],
            ["-i", str(plain), "-metadata:s:v:0", "rotate=90"],
        ):
            run = [ffmpeg, "-v", "error", "-y", *args, "-c", "copy", str(out)]
            if subprocess.run(run, capture_output=True).returncode == 0:
                break
        with av.open(str(out)) as container:
            assert next(container.decode(video=0)).rotation != 0, "ffmpeg wrote no rotation"
        return out

    return make


@pytest.fixture
def ffmpeg_frames(ffmpeg: str) -> Callable[[Path, int, int], np.ndarray]:
    """Function: (video, width, height) -> every frame as ffmpeg shows it (display rotation
    applied), RGB (N, H, W, 3)."""
    import subprocess

    def frames(path: Path, width: int, height: int) -> np.ndarray:
        raw = subprocess.run(
            [ffmpeg, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            check=True,
            capture_output=True,
        ).stdout
        return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)

    return frames
