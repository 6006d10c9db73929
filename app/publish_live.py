"""Publishing a live camera: an RTSP, HTTP/HLS, RTMP, SRT or UDP URL, or a V4L2 device.

The camera's packets go through the same cutter as a file's (``app.video.chunk_stream``),
so chunks follow the same contract and cutting rules; the camera paces them, one chunk
per ``chunk_seconds`` of video as it is recorded.

Session time starts at the first key frame. Within one connection it follows the camera's
own timestamps; a connection that drops (the camera or its server went away, nothing
arrived for ``read_timeout_s``) is opened again with a growing delay (0.5 s doubling up to
10 s), and the video that comes back is placed at the wall-clock time it arrives, so the
outage stays a gap in the session's timeline instead of being closed up. ``seq`` runs on
across connections, each outage is logged and listed in the ``session_end`` payload
(``outages``: from, to, reason), and ingest records the gap among the session's losses.
The session ends with ``session_end`` when ``until_s`` seconds of session time have passed,
``should_stop`` says so (SIGINT/SIGTERM in the CLI), or, with ``reconnect=False``, when the
stream ends or fails; the stretch cut so far goes out first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import av

from app import contract
from app.contract import MessageType
from app.errors import InvalidInputError
from app.kafka_client import make_producer
from app.publish import MAX_CHUNK_BYTES, Message, check_session_id
from app.settings import Settings
from app.video import DEFAULT_MAX_HEIGHT, Chunk, chunk_stream

log = logging.getLogger("cartmem.publish")

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 10.0
_URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "srt", "udp", "tcp")


def is_live_source(source: str) -> bool:
    """A URL PyAV opens as a stream, or a V4L2 device; anything else is a file."""
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    return scheme in _URL_SCHEMES or source.startswith("/dev/video")


@dataclass(frozen=True)
class Outage:
    """Session time (s) when the camera was lost and when its video came back (None: never)."""

    lost_at_s: float
    back_at_s: float | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "from": round(self.lost_at_s, 3),
            "to": _rounded(self.back_at_s),
            "reason": self.reason,
        }


@dataclass
class LiveState:
    """What a live publication did so far; the CLI prints it at the end."""

    chunks: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0  # session time the chunks sent so far cover
    outages: list[Outage] = field(default_factory=list)
    ended_by: str = ""  # "until", "stop", "stream end" (without reconnecting)


@dataclass(frozen=True)
class LiveOptions:
    camera: str = "cam-0"
    chunk_seconds: float = 4.0
    max_chunk_bytes: int = MAX_CHUNK_BYTES
    max_height: int = DEFAULT_MAX_HEIGHT
    until_s: float | None = None  # session seconds to publish; None: until stopped
    reconnect: bool = True  # False: the session ends when the stream ends or fails
    rtsp_transport: str = "tcp"
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0


def live_messages(
    source: str,
    session_id: str,
    options: LiveOptions,
    state: LiveState,
    *,
    start_info: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Message]:
    """session_start, the camera's chunks as they are recorded, session_end."""
    check_session_id(session_id)
    if not is_live_source(source):
        raise InvalidInputError(f"{source!r} is not a live URL or a /dev/video device.")
    key, camera = session_id.encode(), options.camera
    seq = 0
    start = contract.control_value({"camera": camera, **(start_info or {})})
    yield Message(
        key, contract.headers_for(MessageType.SESSION_START, seq=seq, camera=camera), start
    )
    began = clock()
    zero: float | None = None  # clock at the session's first key frame: session time 0
    retry_s = FIRST_RETRY_S
    lost: tuple[float, str] | None = None  # (session time, reason) of an open outage
    last_t0 = 0.0

    def session_time() -> float:
        return clock() - (zero if zero is not None else began)

    def stopping() -> bool:
        if should_stop():
            state.ended_by = state.ended_by or "stop"
        elif options.until_s is not None and session_time() >= options.until_s:
            state.ended_by = state.ended_by or "until"
        return bool(state.ended_by)

    while not stopping():
        try:
            container = _open(source, options)
        except (av.FFmpegError, OSError) as exc:
            reason = f"cannot open the camera ({exc})"
        else:
            with container:
                feed = _LivePackets(container, clock, stopping)
                offset: float | None = None
                for chunk in chunk_stream(
                    container.streams.video[0],
                    feed,
                    chunk_seconds=options.chunk_seconds,
                    max_bytes=options.max_chunk_bytes,
                    max_height=options.max_height,
                ):
                    if offset is None:  # this connection's first key frame, on session time
                        assert feed.first_key_at is not None
                        zero = feed.first_key_at if zero is None else zero
                        offset = max(feed.first_key_at - zero, state.seconds)
                        if lost is not None:
                            _back(state, lost, offset, camera, session_id)
                            lost = None
                        retry_s = FIRST_RETRY_S
                    seq += 1
                    chunk = replace(chunk, t0=round(offset + chunk.t0, 6))
                    last_t0 = chunk.t0
                    state.chunks += 1
                    state.bytes_sent += len(chunk.data)
                    state.seconds = max(state.seconds, chunk.t0 + _duration(chunk, feed.rate))
                    headers = contract.headers_for(
                        MessageType.CHUNK,
                        seq=seq,
                        camera=camera,
                        t0=chunk.t0,
                        content_type=chunk.content_type,
                    )
                    yield Message(key, headers, chunk.data, t0=chunk.t0, reencoded=chunk.reencoded)
            reason = feed.error or "the stream ended"
        if not options.reconnect and not stopping():
            state.ended_by = "stream end"
        if stopping():
            break
        if lost is None:  # from where its video stopped, not when the loss was noticed
            lost = (state.seconds, reason)
            log.warning(
                "camera %s of session %s lost at %.1f s: %s; opening it again in %.1f s",
                camera,
                session_id,
                lost[0],
                reason,
                retry_s,
            )
        _wait(retry_s, stopping, sleep, clock)
        retry_s = min(MAX_RETRY_S, retry_s * 2)
    if lost is not None:
        state.outages.append(Outage(lost[0], None, lost[1]))
    seq += 1
    end = contract.control_value(
        {
            "last_chunk_t0": last_t0,
            "ended_by": state.ended_by,
            "outages": [o.to_json() for o in state.outages],
        }
    )
    yield Message(key, contract.headers_for(MessageType.SESSION_END, seq=seq, camera=camera), end)


class _LivePackets:
    """The packets of one connection, until it fails, ends, or the publisher stops.

    Ending quietly (the error kept in ``error``) lets the cutter send the stretch it holds.
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        clock: Callable[[], float],
        stopping: Callable[[], bool],
    ) -> None:
        self.container = container
        self.stream = container.streams.video[0]
        self.rate = Fraction(self.stream.average_rate or self.stream.guessed_rate or 25)
        self.clock = clock
        self.stopping = stopping
        self.first_key_at: float | None = None
        self.error: str | None = None

    def __iter__(self) -> Iterator[av.Packet]:
        try:
            for packet in self.container.demux(self.stream):
                if self.stopping():
                    return
                if self.first_key_at is None and packet.is_keyframe and packet.size:
                    self.first_key_at = self.clock()
                yield packet
        except (av.FFmpegError, OSError) as exc:
            self.error = f"the stream broke off ({exc})"


def _open(source: str, options: LiveOptions) -> av.container.InputContainer:
    opts: dict[str, str] = {}
    if source.lower().startswith(("rtsp://", "rtsps://")):
        opts["rtsp_transport"] = options.rtsp_transport
    if source.startswith("/dev/video"):
        container = av.open(source, format="v4l2", options=opts)
    else:
        container = av.open(
            source, options=opts, timeout=(options.open_timeout_s, options.read_timeout_s)
        )
    if not container.streams.video:
        container.close()
        raise OSError(f"{source} carries no video stream")
    return container


def _back(
    state: LiveState, lost: tuple[float, str], at_s: float, camera: str, session: str
) -> None:
    state.outages.append(Outage(lost[0], at_s, lost[1]))
    log.warning(
        "camera %s of session %s is back at %.1f s after %.1f s without video",
        camera,
        session,
        at_s,
        at_s - lost[0],
    )


def _wait(
    seconds: float,
    stopping: Callable[[], bool],
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Sleep ``seconds`` in small steps, returning early when the publisher stops."""
    deadline = clock() + seconds
    while not stopping() and (left := deadline - clock()) > 0:
        sleep(min(0.2, left))


def _duration(chunk: Chunk, rate: Fraction) -> float:
    return float(chunk.frames / rate) if rate else 0.0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(frozen=True)
class LiveReport:
    session_id: str
    topic: str
    camera: str
    chunks: int
    seconds: float
    bytes_sent: int
    ended_by: str
    outages: list[dict[str, Any]]


def publish_live(
    settings: Settings,
    source: str,
    session_id: str,
    options: LiveOptions,
    *,
    start_info: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_message: Callable[[Message], None] | None = None,
) -> LiveReport:
    """Stream the camera at ``source`` to ``settings.topic`` as session ``session_id``."""
    state = LiveState()
    options = replace(
        options, max_chunk_bytes=min(options.max_chunk_bytes, settings.max_message_bytes)
    )
    producer = make_producer(settings)
    try:
        for message in live_messages(
            source, session_id, options, state, start_info=start_info, should_stop=should_stop
        ):
            producer.send(
                settings.topic, key=message.key, value=message.value, headers=message.headers
            )
            if on_message is not None:
                on_message(message)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return LiveReport(
        session_id,
        settings.topic,
        options.camera,
        state.chunks,
        round(state.seconds, 3),
        state.bytes_sent,
        state.ended_by,
        [o.to_json() for o in state.outages],
    )
