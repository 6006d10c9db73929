"""Decoding a window of a video file at the memory FPS, seeking to it first.

Both sides of the speedup benchmark decode with this one function: the per-query baseline
asks for each question's window, cartmem for the whole session once. Sample k shows time
k / fps: the last frame whose time is at most k / fps (as ``model.synth.decode_video`` and
the ingest timeline). Every packet from the key frame before the window is decoded (H.264
needs them), but only frames that become samples are converted to RGB, as ingest converts
them (``app.video.decoder.frame_to_rgb``: one conversion thread; FFmpeg's default, a pool
of threads per frame, made each conversion three times slower, 0.85 ms against 0.28 ms for
192 x 144 on 2 cores, on both sides until session 16).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from app.video.decoder import frame_to_rgb

_EPS = 1e-6  # seconds: a frame this close after a sample time still counts as at or before it


def decode_window(path: Path, first: int, end: int, fps: float) -> np.ndarray:
    """Samples ``first .. end - 1`` at ``fps`` of the video: ``(end - first, H, W, 3)`` uint8."""
    if not 0 <= first < end:
        raise ValueError(f"The window [{first}, {end}) is empty or negative.")
    samples: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"  # one decoding thread a stream, as ingest decodes
        origin = stream.start_time or 0
        assert stream.time_base is not None  # FFmpeg gives every demuxed stream a time base
        time_base = float(stream.time_base)
        if first > 0:  # lands on the key frame at or before the window's first sample
            container.seek(origin + int(first / fps / time_base), stream=stream, backward=True)
        k = first
        held: av.VideoFrame | None = None
        held_rgb: np.ndarray | None = None
        for frame in container.decode(stream):
            assert frame.pts is not None  # the benchmark's synthetic videos give every frame one
            t = (frame.pts - origin) * time_base
            while held is not None and k < end and k / fps < t - _EPS:
                if held_rgb is None:
                    held_rgb = frame_to_rgb(held)
                samples.append(held_rgb)
                k += 1
            if k >= end:
                break
            held, held_rgb = frame, None
        if held is None:
            raise ValueError(f"{path} has no frame at or after sample {first}.")
        if k < end:  # past the last frame: it stays on screen until the video ends
            last = held_rgb if held_rgb is not None else frame_to_rgb(held)
            samples.extend([last] * (end - k))
    return np.stack(samples)
