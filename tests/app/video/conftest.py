from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest


def write_video(
    path: Path,
    codec: str = "libx264",
    *,
    frames: int = 40,
    fps: int = 10,
    size: tuple[int, int] = (96, 64),
    options: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
    noise: int = 20,
) -> Path:
    """A test video whose frames all differ (a moving bar, a changing tint, some noise)."""
    width, height = size
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(frames):
            image = np.zeros((height, width, 3), np.uint8)
            image[:, :, 0] = (i * 6) % 256
            image[(i * 3) % height : (i * 3) % height + 6, :, 1] = 255
            image += rng.integers(0, noise + 1, image.shape, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str, codec: str = "libx264", **kwargs) -> Path:
        return write_video(tmp_path / name, codec, **kwargs)

    return make
