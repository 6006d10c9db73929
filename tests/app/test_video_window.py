"""The speedup bench's window decoder samples what the dataset reader samples, from any
first sample on (it seeks to the key frame before the window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.bench.video_window import decode_window
from model.synth import VideoConfig, decode_video
from model.synth.video_io import VideoWriter


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s at 5 FPS, a key frame every second, each frame a different picture."""
    path = tmp_path_factory.mktemp("window") / "shop.mp4"
    rng = np.random.default_rng(4)
    config = VideoConfig(width=64, height=48, fps=5, box_fps=1, keyframe_seconds=1.0, crf=18)
    with VideoWriter(path, config) as writer:
        for _ in range(60):
            writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return path


@pytest.mark.parametrize(
    ("first", "end", "fps"), [(0, 12, 1.0), (3, 9, 1.0), (7, 30, 2.5), (59, 60, 5.0)]
)
def test_a_window_holds_the_dataset_readers_samples(
    video: Path, first: int, end: int, fps: float
) -> None:
    whole = decode_video(video, fps)
    window = decode_window(video, first, end, fps)
    assert window.shape == (end - first, *whole.shape[1:]) and window.dtype == np.uint8
    assert np.array_equal(window, whole[first:end])


def test_an_empty_window_is_refused(video: Path) -> None:
    with pytest.raises(ValueError, match="empty or negative"):
        decode_window(video, 4, 4, 1.0)
