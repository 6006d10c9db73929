"""H.264 writing and decoding at a target FPS on the video's timeline."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from model.synth import DatasetError, VideoConfig, decode_video
from model.synth.video_io import VideoWriter, expected_frames


def test_generated_video_is_h264_with_the_annotated_size_and_length(synth_data) -> None:
    annotation = synth_data.dataset.videos["val-0000"]
    path = synth_data.dataset.video_path("val-0000")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        keyframes = [round(float(f.time), 3) for f in container.decode(stream) if f.key_frame]
    assert annotation.duration == 30.0
    assert keyframes == [2.0 * k for k in range(15)]  # every 2 s: publish cuts there
    frames = decode_video(path, annotation.fps)
    assert frames.shape == (annotation.num_frames, annotation.height, annotation.width, 3)
    assert frames.dtype == np.uint8
    assert decode_video(path, 1).shape[0] == 30
    assert decode_video(path, 5).shape[0] == 150 == expected_frames(annotation.duration, 5)


def test_decoded_video_matches_the_renderer(synth_data, worlds) -> None:
    """The MP4 shows what the renderer drew (up to compression), so boxes apply to it.

    Compared after 4 x 4 average pooling: yuv420p halves the colour resolution, which
    smears the 2-pixel stripes of the small products on the shelves.
    """
    frames = decode_video(synth_data.dataset.video_path("train-0000"), 10)
    other = decode_video(synth_data.dataset.video_path("val-0000"), 10)
    for index in (0, 57, 123, 299):
        drawn = _pool(worlds["train-0000"].renderer.render(index).image)
        assert _psnr(_pool(frames[index]), drawn) > 32, index
        assert _psnr(_pool(other[index]), drawn) < 20, index  # the check can fail


def _pool(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[0] // 4, image.shape[1] // 4
    return image[: h * 4, : w * 4].reshape(h, 4, w, 4, 3).mean(axis=(1, 3))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * float(np.log10(255**2 / max(mse, 1e-9)))


def _colour_video(path: Path, fps: int, count: int) -> list[int]:
    """Frames of flat grey levels 0, 10, 20, ... so each decoded frame names its source."""
    levels = [10 * i for i in range(count)]
    config = VideoConfig(width=64, height=64, fps=fps, box_fps=1, keyframe_seconds=1.0, crf=0)
    with VideoWriter(path, config) as writer:
        for level in levels:
            writer.write(np.full((64, 64, 3), level, np.uint8))
    return levels


@pytest.mark.parametrize("target_fps", [1.0, 3.0, 4.0, 8.0])
def test_resampling_takes_the_last_frame_at_or_before_each_time(
    tmp_path: Path, target_fps: float
) -> None:
    path = tmp_path / "levels.mp4"
    levels = _colour_video(path, fps=4, count=12)  # 3 s: source frame i at i / 4 s
    frames = decode_video(path, target_fps)
    assert len(frames) == round(3 * target_fps)
    for k, frame in enumerate(frames):
        source = int(np.floor(k / target_fps * 4 + 1e-9))
        assert abs(float(frame.mean()) - levels[source]) < 3, (k, source)


def test_missing_or_broken_video_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        decode_video(tmp_path / "nope.mp4", 1)
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 50)
    with pytest.raises(DatasetError):
        decode_video(tmp_path / "bad.mp4", 1)
