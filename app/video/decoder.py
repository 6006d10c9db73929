"""Decoding one self-contained chunk into RGB frames, with the limits checked first."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from app.errors import VideoError

_FORMATS = {"video/mp2t": "mpegts", "video/mp4": "mp4"}


@dataclass(frozen=True)
class DecodedChunk:
    """Frames (N, H, W, 3) uint8 in presentation order, their offsets from the chunk's first
    frame in microseconds (N,), and the source frame duration."""

    frames: np.ndarray
    offsets_us: np.ndarray
    frame_duration_us: int


def decode_chunk(
    data: bytes,
    content_type: str,
    *,
    max_frame_pixels: int,
    max_seconds: float,
) -> DecodedChunk:
    """Decode ``data``; raise :class:`VideoError` saying why when it cannot be used."""
    fmt = _FORMATS.get(content_type)
    if fmt is None:
        raise VideoError(f"content type {content_type!r} is not a video format cartmem reads.")
    try:
        container = av.open(io.BytesIO(data), format=fmt)
    except av.FFmpegError as exc:
        raise VideoError(f"the chunk is not readable {fmt} video ({_why(exc)}).") from None
    with container:
        if not container.streams.video:
            raise VideoError("the chunk holds no video stream.")
        stream = container.streams.video[0]
        stream.thread_type = "NONE"  # one thread: identical output whatever the machine
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > max_frame_pixels:
            raise VideoError(
                f"frames are {width}x{height}, over the limit of {max_frame_pixels} pixels."
            )
        frames, pts = _decode_all(container, stream, max_frame_pixels)
        # read while the container is open: a closed container's streams are freed memory
        time_base = stream.time_base or Fraction(1, 90_000)
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
    if not frames:
        raise VideoError("the chunk contains no decodable frame (truncated or not video).")
    first = min(pts)
    offsets = np.array([round((p - first) * time_base * 1_000_000) for p in pts], dtype=np.int64)
    order = np.argsort(offsets, kind="stable")
    span_s = float(offsets[order[-1]]) / 1e6
    if span_s > max_seconds:
        raise VideoError(f"the chunk spans {span_s:.1f} s, over the {max_seconds:g} s limit.")
    return DecodedChunk(
        frames=np.stack([frames[i] for i in order]),
        offsets_us=offsets[order],
        frame_duration_us=round(1_000_000 / rate),
    )


def _decode_all(
    container: av.container.InputContainer, stream: av.VideoStream, max_pixels: int
) -> tuple[list[np.ndarray], list[int]]:
    frames: list[np.ndarray] = []
    pts: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.is_corrupt:
                raise VideoError("the chunk has a corrupt packet (truncated or damaged video).")
            for frame in packet.decode():
                if frame.width * frame.height > max_pixels:
                    raise VideoError(
                        f"a frame is {frame.width}x{frame.height}, over the limit of "
                        f"{max_pixels} pixels."
                    )
                if frame.pts is None:
                    raise VideoError("a frame has no presentation time.")
                frames.append(frame.to_ndarray(format="rgb24"))
                pts.append(frame.pts)
    except av.FFmpegError as exc:
        raise VideoError(f"the chunk could not be decoded ({_why(exc)}).") from None
    return frames, pts


def _why(exc: av.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]
