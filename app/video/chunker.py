"""Cutting a video file into self-contained MPEG-TS chunks, as a store system publishes them.

H.264 is cut at IDR access units and remuxed without touching a pixel, so a chunk decodes
to exactly the frames the whole file decodes to. Every chunk opens with its parameter sets
in band (Annex B SPS and PPS before the IDR), so a decoder needs nothing from an earlier
chunk. Other key frames are not cut points: an open GOP's recovery-point I frames are
followed by frames that refer back to the previous GOP.

Everything else is decoded and re-encoded as H.264, upright, at most ``max_height`` rows:

- other codecs (VP9, MJPEG, HEVC, ...);
- H.264 with a display rotation: MPEG-TS cannot carry an MP4 display matrix, so a remuxed
  chunk would reach ingest sideways; re-encoding turns the pixels upright instead;
- a stretch that goes ``_WAIT_FOR_IDR`` chunk lengths without an IDR (open GOPs, very long
  GOPs): it is decoded on from its IDR and re-encoded in chunk-length pieces;
- a stretch between IDRs too big for one message.

Re-encoded pieces are split further until each fits under the byte limit. Publishing need
not be bit-exact, so it decodes and encodes with threads; ingest decodes on one thread.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av

from app.errors import VideoError
from app.video.decoder import frame_to_rgb

CONTENT_TYPE = "video/mp2t"
# the largest preset reads 224-pixel frames and ingest decodes to twice that (448) on the
# longer side: 480 rows hold all the memory can use, and encode several times faster than
# 720 or 1080 on a small store machine
DEFAULT_MAX_HEIGHT = 480
_TS_TIME_BASE = Fraction(1, 90_000)
_CRF_STEPS = (23, 30, 36, 42)
_PRESET = "veryfast"
_WAIT_FOR_IDR = 3  # chunk lengths a stretch may run without an IDR before it is re-encoded
_NAL_IDR, _NAL_SPS, _NAL_PPS, _NAL_AUD = 5, 7, 8, 9
_START_CODE = b"\x00\x00\x00\x01"


@dataclass(frozen=True)
class Chunk:
    """One message's worth of video: ``t0`` is the session time of its first frame (s)."""

    t0: float
    data: bytes
    content_type: str
    frames: int
    reencoded: bool


@dataclass(frozen=True)
class _Cut:
    chunk_seconds: float
    max_bytes: int
    max_height: int


def cut_chunks(
    path: Path, *, chunk_seconds: float, max_bytes: int, max_height: int = DEFAULT_MAX_HEIGHT
) -> Iterator[Chunk]:
    """Chunks of about ``chunk_seconds`` each, in order, every one at most ``max_bytes``;
    re-encoded ones at most ``max_height`` rows."""
    if chunk_seconds <= 0:
        raise VideoError("--chunk-seconds must be positive.")
    if max_height < 2:
        raise VideoError("--max-height must be at least 2 rows.")
    try:
        container = av.open(str(path))
    except (OSError, av.FFmpegError) as exc:
        raise VideoError(f"cannot open video {path} ({exc}).") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path} has no video stream.")
        stream = container.streams.video[0]
        yield from chunk_stream(
            stream,
            container.demux(stream),
            chunk_seconds=chunk_seconds,
            max_bytes=max_bytes,
            max_height=max_height,
            rotated=_rotated(path),
        )


def chunk_stream(
    stream: av.VideoStream,
    packets: Iterable[av.Packet],
    *,
    chunk_seconds: float,
    max_bytes: int,
    max_height: int = DEFAULT_MAX_HEIGHT,
    rotated: bool = False,
) -> Iterator[Chunk]:
    """The chunks of ``packets`` (demuxed from ``stream``, in order), with the rules of
    ``cut_chunks``; ``t0`` counts from the first key frame. A live source passes its own
    packet iterator: when it ends, the last stretch is sent as it is."""
    cut = _Cut(chunk_seconds, max_bytes, max_height)
    stream.thread_type = "AUTO"
    if stream.codec_context.name == "h264" and not rotated:
        yield from _h264_chunks(stream, packets, cut)
    else:
        yield from _reencoded_all(stream, packets, cut)


def _rotated(path: Path) -> bool:
    """Whether the video's first frame carries a display rotation."""
    with av.open(str(path)) as container:
        try:
            frame = next(container.decode(video=0), None)
        except av.FFmpegError:
            return False  # the real pass says what is wrong with the file
    return frame is not None and round(frame.rotation / 90) % 4 != 0


def _h264_chunks(
    stream: av.VideoStream, packets: Iterable[av.Packet], cut: _Cut
) -> Iterator[Chunk]:
    units = _H264Units(stream.codec_context.extradata)
    tb = _time_base(stream)
    start: int | None = None  # pts of session time zero
    group: list[av.Packet] = []  # packets from an IDR on, in decode order
    lead: list[bytes] = []  # the parameter sets in force at the group's IDR
    redo: _Redecoder | None = None  # re-encoding a stretch that has no IDR in reach
    for packet in packets:
        if packet.pts is None or packet.size == 0:
            continue
        idr = units.scan(bytes(packet))
        if start is None:
            if not (idr or packet.is_keyframe):
                continue  # nothing before the first key frame can be decoded
            start = packet.pts
            if not idr:  # a recovery point: decodable from here, but not as a cut
                redo = _Redecoder(stream, units, start, cut)
        if redo is not None:
            if not idr:
                yield from redo.feed(packet)
                continue
            yield from redo.finish()
            redo = None
        elif idr and group and (packet.pts - _pts(group[0])) * tb >= cut.chunk_seconds:
            yield from _group_chunks(group, lead, stream, units, start, cut)
            group = []
        if not group:
            lead = list(units.parameter_sets)
        group.append(packet)
        if (packet.pts - _pts(group[0])) * tb > _WAIT_FOR_IDR * cut.chunk_seconds:
            redo = _Redecoder(stream, units, start, cut)
            for waiting in group:
                yield from redo.feed(waiting)
            group = []
    if start is None:
        raise VideoError("the video has no key frame to start from.")
    if redo is not None:
        yield from redo.finish()
    elif group:
        yield from _group_chunks(group, lead, stream, units, start, cut)


def _group_chunks(
    packets: Sequence[av.Packet],
    lead: list[bytes],
    stream: av.VideoStream,
    units: _H264Units,
    start: int,
    cut: _Cut,
) -> Iterator[Chunk]:
    data = _mux_ts(packets, lead, stream, units)
    if len(data) <= cut.max_bytes:
        first = (min(_pts(p) for p in packets) - start) * _time_base(stream)
        yield Chunk(_seconds(first), data, CONTENT_TYPE, frames=len(packets), reencoded=False)
        return
    # a stretch between IDRs too big for one message: decode it, re-encode smaller pieces
    redo = _Redecoder(stream, units, start, cut)
    for packet in packets:
        yield from redo.feed(packet)
    yield from redo.finish()


def _mux_ts(
    packets: Sequence[av.Packet], lead: list[bytes], stream: av.VideoStream, units: _H264Units
) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mpegts") as out:
        target = out.add_stream_from_template(stream)
        for i, packet in enumerate(packets):
            # Annex B, parameter sets before the IDR: a muxer left to convert MP4-style
            # packets itself adds them only where it sees fit
            copy = av.Packet(units.annexb(bytes(packet), lead if i == 0 else None))
            copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
            # only the IDR is a random access point; the muxer would prepend the MP4-style
            # extradata to other key frames
            copy.is_keyframe = i == 0
            copy.stream = target
            out.mux(copy)
    return buffer.getvalue()


class _H264Units:
    """NAL units of H.264 packets, MP4 style (length-prefixed, avcC extradata) or Annex B,
    and the latest SPS/PPS seen in the stream."""

    def __init__(self, extradata: bytes | None) -> None:
        self.length_size = 0  # 0: Annex B
        self.parameter_sets: list[bytes] = []
        if extradata and extradata[0] == 1 and len(extradata) >= 7:  # avcC
            self.length_size = (extradata[4] & 3) + 1
            pos = 5
            for mask in (0x1F, 0xFF):  # SPS count, then PPS count
                count, pos = extradata[pos] & mask, pos + 1
                for _ in range(count):
                    size = int.from_bytes(extradata[pos : pos + 2], "big")
                    self.parameter_sets.append(bytes(extradata[pos + 2 : pos + 2 + size]))
                    pos += 2 + size
        elif extradata:
            self.scan(bytes(extradata))

    def split(self, data: bytes) -> list[bytes]:
        if not self.length_size:
            return _annexb_units(data)
        units, pos, n = [], 0, self.length_size
        while pos + n <= len(data):
            size = int.from_bytes(data[pos : pos + n], "big")
            units.append(data[pos + n : pos + n + size])
            pos += n + size
        return units

    def scan(self, data: bytes) -> bool:
        """Whether ``data`` is an IDR access unit; remembers the parameter sets it carries."""
        units = self.split(data)
        types = [u[0] & 0x1F for u in units if u]
        if _NAL_SPS in types or _NAL_PPS in types:
            sps = [u for u, t in zip(units, types, strict=True) if t == _NAL_SPS]
            pps = [u for u, t in zip(units, types, strict=True) if t == _NAL_PPS]
            old = self.parameter_sets
            self.parameter_sets = (sps or [u for u in old if u[0] & 0x1F == _NAL_SPS]) + (
                pps or [u for u in old if u[0] & 0x1F == _NAL_PPS]
            )
        return _NAL_IDR in types

    def annexb(self, data: bytes, lead: list[bytes] | None) -> bytes:
        """``data`` as Annex B; with ``lead``, the parameter sets go first unless present."""
        units = self.split(data)
        types = {u[0] & 0x1F for u in units if u}
        if lead and not {_NAL_SPS, _NAL_PPS} <= types:
            at = 1 if units and units[0] and units[0][0] & 0x1F == _NAL_AUD else 0
            units = [*units[:at], *lead, *units[at:]]
        elif not self.length_size:
            return data
        return b"".join(_START_CODE + u for u in units if u)


def _annexb_units(data: bytes) -> list[bytes]:
    units = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        j = data.find(b"\x00\x00\x01", i + 3)
        # a unit never ends in a zero byte: trailing zeros belong to the next start code
        unit = data[i + 3 : None if j < 0 else j].rstrip(b"\x00")
        if unit:
            units.append(unit)
        i = j
    return units


class _Redecoder:
    """Decodes a stretch of packets from its IDR (or recovery point) on and re-encodes it."""

    def __init__(self, stream: av.VideoStream, units: _H264Units, start: int, cut: _Cut) -> None:
        # create() picks the context class from a literal codec name only: a video
        # stream's codec gives a video context
        self.context = cast(
            av.VideoCodecContext, av.CodecContext.create(stream.codec_context.name, "r")
        )
        # MP4-style packets need the avcC; Annex B ones the parameter sets seen in band
        self.context.extradata = (
            stream.codec_context.extradata
            if units.length_size
            else b"".join(_START_CODE + u for u in units.parameter_sets)
        )
        self.context.thread_type = "AUTO"
        self.time_base = _time_base(stream)
        self.start = start
        self.pieces = _Pieces(_rate(stream), cut)

    def feed(self, packet: av.Packet) -> Iterator[Chunk]:
        yield from self._encode(packet)

    def finish(self) -> Iterator[Chunk]:
        yield from self._encode(None)
        yield from self.pieces.finish()

    def _encode(self, packet: av.Packet | None) -> Iterator[Chunk]:
        try:
            frames = self.context.decode(packet)
        except av.FFmpegError as exc:
            raise VideoError(f"the video could not be decoded ({exc}).") from None
        for frame in frames:
            # frames that lead a recovery point refer to a GOP before it: not decodable
            if frame.pts is not None and frame.pts >= self.start and not frame.is_corrupt:
                yield from self.pieces.add(frame, (frame.pts - self.start) * self.time_base)


def _reencoded_all(
    stream: av.VideoStream, packets: Iterable[av.Packet], cut: _Cut
) -> Iterator[Chunk]:
    pieces = _Pieces(_rate(stream), cut)
    tb = _time_base(stream)
    start: int | None = None
    try:
        for frame in _decoded(stream, packets):
            if frame.pts is None or frame.is_corrupt:
                continue
            start = frame.pts if start is None else start
            yield from pieces.add(frame, (frame.pts - start) * tb)
    except av.FFmpegError as exc:
        raise VideoError(f"the video could not be decoded ({exc}).") from None
    if start is None:
        raise VideoError("the video has no decodable frame.")
    yield from pieces.finish()


def _decoded(stream: av.VideoStream, packets: Iterable[av.Packet]) -> Iterator[av.VideoFrame]:
    """The frames of ``packets``, the decoder drained at the end (what ``container.decode``
    does, for a packet source of the caller's)."""
    for packet in packets:
        if packet.size:
            yield from cast(list[av.VideoFrame], stream.codec_context.decode(packet))
    yield from cast(list[av.VideoFrame], stream.codec_context.decode(None))


class _Pieces:
    """Frames re-encoded into chunks of about ``chunk_seconds``, upright, at most
    ``max_height`` rows; a piece's frames are held small (yuv420p) until it is encoded."""

    def __init__(self, rate: Fraction, cut: _Cut) -> None:
        self.rate = rate
        self.cut = cut
        self.size: tuple[int, int] | None = None  # (width, height) as stored, before rotation
        self.frames: list[av.VideoFrame] = []
        self.times: list[Fraction] = []  # seconds from session start

    def add(self, frame: av.VideoFrame, t: Fraction) -> Iterator[Chunk]:
        if self.times and t <= self.times[-1]:
            return  # a repeated time: the frame before it stands
        if self.frames and t - self.times[0] >= self.cut.chunk_seconds:
            yield from self.finish()
        self.frames.append(self._upright(frame))
        self.times.append(t)

    def finish(self) -> Iterator[Chunk]:
        if self.frames:
            yield from _encode_pieces(self.frames, self.times, self.rate, self.cut.max_bytes)
        self.frames, self.times = [], []

    def _upright(self, frame: av.VideoFrame) -> av.VideoFrame:
        turns = round(frame.rotation / 90) % 4
        if self.size is None:  # every frame goes to the first frame's encoded size
            width, height = frame.width, frame.height
            upright_height = width if turns % 2 else height
            scale = min(1.0, self.cut.max_height / upright_height)
            self.size = (_even(width * scale), _even(height * scale))
        width, height = self.size
        if turns:  # scaled and turned upright as RGB, the way ingest would turn it
            frame = av.VideoFrame.from_ndarray(frame_to_rgb(frame, size=self.size), "rgb24")
            width, height = frame.width, frame.height
        # BT.601, limited range: what a decoder assumes of an H.264 stream that does not say
        return frame.reformat(
            width=width,
            height=height,
            format="yuv420p",
            dst_colorspace="ITU601",
            dst_color_range="MPEG",
            interpolation="AREA",
            threads=1,  # measured: swscale's threads cost more than they save per frame
        )


def _encode_pieces(
    frames: Sequence[av.VideoFrame],
    times: Sequence[Fraction],
    rate: Fraction,
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
            yield from _encode_pieces(frames[:half], times[:half], rate, max_bytes)
            yield from _encode_pieces(frames[half:], times[half:], rate, max_bytes)
            return
    raise VideoError(f"a single frame does not fit in {max_bytes} bytes even re-encoded.")


def _encode_ts(
    frames: Sequence[av.VideoFrame], times: Sequence[Fraction], rate: Fraction, crf: int
) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mpegts") as out:
        stream = out.add_stream(
            "libx264",
            rate=rate,
            # threads "0": as many as the machine has; publishing need not be bit-exact
            options={"crf": str(crf), "preset": _PRESET, "threads": "0", "bframes": "0"},
        )
        stream.width, stream.height = frames[0].width, frames[0].height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = _TS_TIME_BASE
        base = times[0]
        for frame, t in zip(frames, times, strict=True):
            frame.pts = round((t - base) / _TS_TIME_BASE)
            frame.time_base = _TS_TIME_BASE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def _even(size: float) -> int:
    return max(2, round(size / 2) * 2)  # yuv420p needs even sides


def _time_base(stream: av.VideoStream) -> Fraction:
    tb = stream.time_base
    assert tb is not None  # FFmpeg gives every demuxed stream a time base
    return tb


def _pts(packet: av.Packet) -> int:
    assert packet.pts is not None  # only packets with a pts are kept
    return packet.pts


def _rate(stream: av.VideoStream) -> Fraction:
    return Fraction(stream.average_rate or stream.guessed_rate or 30)


def _seconds(value: Fraction) -> float:
    # microsecond precision: the ingest timeline works in integer microseconds
    return round(float(value), 6)
