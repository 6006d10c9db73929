"""Cutting a video file into self-contained MPEG-TS chunks, as a store system publishes them.

H.264 streams are cut at key frames and remuxed without touching a pixel,
so a chunk decodes to exactly the frames the whole file decodes to. Anything else (VP9,
MJPEG, ...), or a stretch between key frames too big for one message, is decoded and
re-encoded as H.264, split further until every chunk fits under the byte limit.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from app.errors import VideoError

CONTENT_TYPE = "video/mp2t"
# H.264 as most cameras write it (closed GOPs: key frames are IDR) cuts cleanly; HEVC and
# MPEG-2 often use open GOPs, whose leading frames need the previous GOP, so re-encode those
_REMUXABLE = {"h264"}
_TS_TIME_BASE = Fraction(1, 90_000)
_CRF_STEPS = (23, 30, 36, 42)


@dataclass(frozen=True)
class Chunk:
    """One message's worth of video: ``t0`` is the session time of its first frame (s)."""

    t0: float
    data: bytes
    content_type: str
    frames: int
    reencoded: bool


def cut_chunks(path: Path, *, chunk_seconds: float, max_bytes: int) -> Iterator[Chunk]:
    """Chunks of about ``chunk_seconds`` each, in order, every one at most ``max_bytes``."""
    if chunk_seconds <= 0:
        raise VideoError("--chunk-seconds must be positive.")
    try:
        container = av.open(str(path))
    except (OSError, av.FFmpegError) as exc:
        raise VideoError(f"cannot open video {path} ({exc}).") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path} has no video stream.")
        stream = container.streams.video[0]
        if stream.codec_context.name in _REMUXABLE:
            yield from _remuxed(container, stream, chunk_seconds, max_bytes)
        else:
            yield from _reencoded_all(container, stream, chunk_seconds, max_bytes)


def _remuxed(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    chunk_seconds: float,
    max_bytes: int,
) -> Iterator[Chunk]:
    tb = stream.time_base
    start: int | None = None
    group: list[av.Packet] = []
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        if start is None:
            if not packet.is_keyframe:
                continue  # nothing before the first key frame can be decoded
            start = packet.pts
        long_enough = group and (packet.pts - group[0].pts) * tb >= chunk_seconds
        if packet.is_keyframe and long_enough:
            yield from _group_chunks(group, stream, start, chunk_seconds, max_bytes)
            group = []
        group.append(packet)
    if start is None:
        raise VideoError("the video has no key frame to start from.")
    if group:
        yield from _group_chunks(group, stream, start, chunk_seconds, max_bytes)


def _group_chunks(
    packets: Sequence[av.Packet],
    stream: av.VideoStream,
    start: int,
    chunk_seconds: float,
    max_bytes: int,
) -> Iterator[Chunk]:
    data = _mux_ts(packets, stream)
    first = (min(p.pts for p in packets) - start) * stream.time_base
    if len(data) <= max_bytes:
        yield Chunk(_seconds(first), data, CONTENT_TYPE, frames=len(packets), reencoded=False)
        return
    # a key-frame interval too big for one message: decode it and re-encode smaller pieces
    frames, times = _decode_ts(data)
    yield from _encode_pieces(
        frames, [first + t for t in times], _rate(stream), chunk_seconds, max_bytes
    )


def _reencoded_all(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    chunk_seconds: float,
    max_bytes: int,
) -> Iterator[Chunk]:
    start: Fraction | None = None
    frames: list[np.ndarray] = []
    times: list[Fraction] = []
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        t = frame.pts * stream.time_base
        start = t if start is None else start
        if frames and t - start - times[0] >= chunk_seconds:
            yield from _encode_pieces(frames, times, _rate(stream), chunk_seconds, max_bytes)
            frames, times = [], []
        frames.append(frame.to_ndarray(format="rgb24"))
        times.append(t - start)
    if start is None:
        raise VideoError("the video has no decodable frame.")
    yield from _encode_pieces(frames, times, _rate(stream), chunk_seconds, max_bytes)


def _encode_pieces(
    frames: Sequence[np.ndarray],
    times: Sequence[Fraction],
    rate: Fraction,
    chunk_seconds: float,
    max_bytes: int,
) -> Iterator[Chunk]:
    """H.264 chunks of ``frames``; halves the run until each piece fits ``max_bytes``."""
    for crf in _CRF_STEPS:
        data = _encode_ts(frames, times, rate, crf)
        if len(data) <= max_bytes:
            yield Chunk(_seconds(times[0]), data, CONTENT_TYPE, frames=len(frames), reencoded=True)
            return
        if len(frames) > 1:
            half = len(frames) // 2
            yield from _encode_pieces(frames[:half], times[:half], rate, chunk_seconds, max_bytes)
            yield from _encode_pieces(frames[half:], times[half:], rate, chunk_seconds, max_bytes)
            return
    raise VideoError(f"a single frame does not fit in {max_bytes} bytes even re-encoded.")


def _decode_ts(data: bytes) -> tuple[list[np.ndarray], list[Fraction]]:
    """Frames of an MPEG-TS chunk and their offsets (s) from its first frame."""
    frames, pts = [], []
    with av.open(io.BytesIO(data), format="mpegts") as ts:
        stream = ts.streams.video[0]
        for frame in ts.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            pts.append(frame.pts)
        time_base = stream.time_base
    first = min(pts)
    return frames, [(p - first) * time_base for p in pts]


def _mux_ts(packets: Sequence[av.Packet], stream: av.VideoStream) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mpegts") as out:
        target = out.add_stream_from_template(stream)
        for packet in packets:
            # a copy: muxing rescales a packet's timestamps in place, and callers reuse them
            copy = av.Packet(bytes(packet))
            copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
            copy.is_keyframe = packet.is_keyframe
            copy.stream = target
            out.mux(copy)
    return buffer.getvalue()


def _encode_ts(
    frames: Sequence[np.ndarray], times: Sequence[Fraction], rate: Fraction, crf: int
) -> bytes:
    buffer = io.BytesIO()
    height, width = frames[0].shape[:2]
    with av.open(buffer, mode="w", format="mpegts") as out:
        stream = out.add_stream(
            "libx264",
            rate=rate,
            options={"crf": str(crf), "preset": "veryfast", "threads": "1", "bframes": "0"},
        )
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = _TS_TIME_BASE
        base = times[0]
        for image, t in zip(frames, times, strict=True):
            frame = av.VideoFrame.from_ndarray(
                image[: stream.height, : stream.width], format="rgb24"
            )
            frame.pts = round((t - base) / _TS_TIME_BASE)
            frame.time_base = _TS_TIME_BASE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def _rate(stream: av.VideoStream) -> Fraction:
    return Fraction(stream.average_rate or stream.guessed_rate or 30)


def _seconds(value: Fraction) -> float:
    # microsecond precision: the ingest timeline works in integer microseconds
    return round(float(value), 6)
