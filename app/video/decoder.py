"""Decoding one self-contained chunk into RGB frames, with the limits checked first.

Frames are converted one at a time as the decoder hands them over, at the size the memory
needs (``max_side``) and, with ``sample_fps``, only when the session timeline could ever
emit them: a few full-size frames are held at once, never the whole chunk. Decoding runs
on one thread, so the output is the same on every machine that runs the same libraries.

Video that does not decode cleanly is not a reason to drop what did: a chunk cut short or
damaged keeps its good frames, and ``DecodedChunk.loss`` says what was lost. Only a chunk
with nothing decodable is a :class:`VideoError`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from app.errors import VideoError
from app.video.timeline import keeps_frame

_FORMATS = {"video/mp2t": "mpegts", "video/mp4": "mp4"}
_TS_PACKET_BYTES = 188
# frames the decoder may hand over out of presentation order (a stream that does not say
# how far it reorders); a later frame older than these is dropped, as the timeline would
_REORDER_WINDOW = 2
# what one chunk may decode to; at the memory's size and FPS a chunk is a few MB
MAX_DECODED_BYTES = 1 << 30


@dataclass(frozen=True)
class DecodedChunk:
    """Frames (N, H, W, 3) uint8 in presentation order, their offsets from the chunk's first
    frame in microseconds (N,), and the source frame duration; ``loss`` is a sentence saying
    what video was lost when the chunk decoded only in part."""

    frames: np.ndarray
    offsets_us: np.ndarray
    frame_duration_us: int
    loss: str | None = None


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) with the longer side at most ``max_side``, aspect kept; smaller frames
    keep their size."""
    longer = max(width, height)
    if max_side is None or longer <= max_side:
        return width, height
    return max(1, round(width * max_side / longer)), max(1, round(height * max_side / longer))


def frame_to_rgb(
    frame: av.VideoFrame, *, max_side: int | None = None, size: tuple[int, int] | None = None
) -> np.ndarray:
    """The frame upright as RGB (H, W, 3) uint8.

    It is scaled to ``size`` (width, height as stored, before rotation) when given, else so
    that its longer side is at most ``max_side``; then the display rotation it carries (an
    MP4 display matrix, an H.264 orientation message) is applied. Ingest and the tests'
    whole-file reference both convert frames here, so they agree to the bit.
    """
    width, height = size or scaled_size(frame.width, frame.height, max_side)
    if (width, height) == (frame.width, frame.height):
        rgb = frame.to_ndarray(format="rgb24", threads=1)
    else:
        # area averaging: a 4K frame shrunk to a few hundred pixels without aliasing
        rgb = frame.reformat(
            width=width, height=height, format="rgb24", interpolation="AREA", threads=1
        ).to_ndarray()
    turns = round(frame.rotation / 90) % 4  # counterclockwise, as np.rot90 turns
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def decode_chunk(
    data: bytes,
    content_type: str,
    *,
    max_frame_pixels: int,
    max_seconds: float,
    max_side: int | None = None,
    sample_fps: float | None = None,
    t0_us: int = 0,
) -> DecodedChunk:
    """Decode ``data``; raise :class:`VideoError` saying why when it cannot be used.

    ``max_side``: frames are scaled (aspect kept) so that their longer side is at most this;
    every frame of the chunk comes out at the first frame's size. ``sample_fps`` and
    ``t0_us`` (the chunk's session time): only frames the timeline could emit at that FPS
    are kept (:func:`app.video.timeline.frames_needed`), the first and last always.
    """
    fmt = _FORMATS.get(content_type)
    if fmt is None:
        raise VideoError(f"content type {content_type!r} is not a video format cartmem reads.")
    losses: list[str] = []
    if fmt == "mpegts" and len(data) % _TS_PACKET_BYTES:
        losses.append(
            f"it ends in a partial MPEG-TS packet ({len(data) % _TS_PACKET_BYTES} of "
            f"{_TS_PACKET_BYTES} bytes), so it was cut short"
        )
    try:
        container = av.open(io.BytesIO(data), "r", format=fmt)
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
        # read while the container is open: a closed container's streams are freed memory
        time_base = stream.time_base or Fraction(1, 90_000)
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        frames = _Frames(
            time_base,
            max_pixels=max_frame_pixels,
            max_seconds=max_seconds,
            max_side=max_side,
            sample_fps=sample_fps,
            t0_us=t0_us,
        )
        losses += _decode_into(frames, container, stream)
    if not frames.images:
        reason = f" ({'; '.join(losses)})" if losses else ""
        raise VideoError(f"the chunk contains no decodable frame (truncated or not video){reason}.")
    losses += frames.losses()
    return DecodedChunk(
        frames=np.stack(frames.images),
        offsets_us=np.array(frames.offsets_us, dtype=np.int64),
        frame_duration_us=round(1_000_000 / rate),
        loss=f"part of the chunk was lost: {'; '.join(losses)}." if losses else None,
    )


def _decode_into(
    frames: _Frames, container: av.container.InputContainer, stream: av.VideoStream
) -> list[str]:
    """Feed every packet's frames to ``frames``; what went wrong, as clauses of a sentence."""
    corrupt_packets = rejected = 0
    rejected_why = ""
    try:
        for packet in container.demux(stream):
            # a damaged packet still goes to the decoder: the frames it yields are flagged
            # corrupt there and dropped, and the ones before it are kept
            corrupt_packets += packet.is_corrupt
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                rejected += 1
                rejected_why = rejected_why or _why(exc)
                continue
            for frame in decoded:
                frames.add(frame)
        frames.finish()
    except av.FFmpegError as exc:  # the container itself stopped making sense
        frames.finish()
        return [f"reading stopped early ({_why(exc)})"]
    losses = []
    if corrupt_packets:
        losses.append(f"{_count(corrupt_packets, 'packet')} flagged corrupt by the demuxer")
    if rejected:
        losses.append(f"{_count(rejected, 'packet')} the decoder rejected ({rejected_why})")
    return losses


class _Frames:
    """The kept frames of one chunk, converted as the decoder hands them over."""

    def __init__(
        self,
        time_base: Fraction,
        *,
        max_pixels: int,
        max_seconds: float,
        max_side: int | None,
        sample_fps: float | None,
        t0_us: int,
    ) -> None:
        self.time_base = time_base
        self.max_pixels = max_pixels
        self.max_seconds = max_seconds
        self.max_side = max_side
        self.sample_fps = sample_fps
        self.t0_us = t0_us
        self.pending: list[av.VideoFrame] = []  # full size, sorted by pts: the reorder window
        self.first_pts: int | None = None
        self.last_pts: int | None = None
        self.size: tuple[int, int] | None = None  # of every kept frame, before rotation
        self.images: list[np.ndarray] = []
        self.offsets_us: list[int] = []
        self.decoded_bytes = 0
        self.damaged_us: list[int] = []  # offsets of frames the decoder flagged corrupt
        self.late = 0

    def add(self, frame: av.VideoFrame) -> None:
        if frame.width * frame.height > self.max_pixels:
            raise VideoError(
                f"a frame is {frame.width}x{frame.height}, over the limit of "
                f"{self.max_pixels} pixels."
            )
        if frame.pts is None:
            raise VideoError("a frame has no presentation time.")
        if frame.is_corrupt:  # concealed errors: a cut-short or damaged picture
            self.damaged_us.append(self._offset_us(frame.pts) if self.first_pts is not None else 0)
            return
        index = next((i for i, f in enumerate(self.pending) if _pts(f) > frame.pts), None)
        self.pending.insert(len(self.pending) if index is None else index, frame)
        if len(self.pending) > _REORDER_WINDOW:
            self._take(self.pending.pop(0))

    def finish(self) -> None:
        while self.pending:
            self._take(self.pending.pop(0))

    def losses(self) -> list[str]:
        out = []
        if self.damaged_us:
            first, last = min(self.damaged_us) / 1e6, max(self.damaged_us) / 1e6
            at = f"at {first:.2f} s" if first == last else f"between {first:.2f} and {last:.2f} s"
            out.append(f"{_count(len(self.damaged_us), 'damaged frame')} dropped {at}")
        if self.late:
            out.append(f"{_count(self.late, 'frame')} out of order dropped")
        return out

    def _take(self, frame: av.VideoFrame) -> None:
        """Keep ``frame`` (the oldest in the window) if the timeline may need it."""
        pts = _pts(frame)
        if self.first_pts is None:
            self.first_pts = pts
        if self.last_pts is not None and pts <= self.last_pts:
            # a duplicate time or a frame the window could not reorder: the timeline keeps
            # the first frame at a time and never goes back, so it would ignore this one
            self.late += pts < self.last_pts
            return
        offset = self._offset_us(pts)
        if offset > self.max_seconds * 1_000_000:
            raise VideoError(
                f"the chunk spans at least {offset / 1e6:.1f} s, over the "
                f"{self.max_seconds:g} s limit."
            )
        self.last_pts = pts
        later = next((f for f in self.pending if _pts(f) > pts), None)
        if self.sample_fps is not None and not keeps_frame(
            self.t0_us + offset,
            None if later is None else self.t0_us + self._offset_us(_pts(later)),
            self.sample_fps,
            first=not self.images,
        ):
            return
        if self.size is None:
            self.size = scaled_size(frame.width, frame.height, self.max_side)
        image = frame_to_rgb(frame, size=self.size)
        self.decoded_bytes += image.nbytes
        if self.decoded_bytes > MAX_DECODED_BYTES:
            raise VideoError(
                f"the chunk decodes to more than {MAX_DECODED_BYTES >> 20} MiB of frames."
            )
        self.images.append(image)
        self.offsets_us.append(offset)

    def _offset_us(self, pts: int) -> int:
        assert self.first_pts is not None
        return round((pts - self.first_pts) * self.time_base * 1_000_000)


def _pts(frame: av.VideoFrame) -> int:
    assert frame.pts is not None  # _Frames.add takes only frames with a pts
    return frame.pts


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _why(exc: av.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]
