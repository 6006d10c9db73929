"""What a store system does: send one session's video to Kafka under contract v1."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import contract
from app.contract import MessageType
from app.errors import InvalidInputError
from app.kafka_client import make_producer
from app.settings import Settings
from app.video import DEFAULT_MAX_HEIGHT, cut_chunks

# contract: a chunk stays under ~900 KB so that it fits Kafka's default 1 MiB message limit
MAX_CHUNK_BYTES = 900_000


@dataclass(frozen=True)
class Message:
    key: bytes
    headers: list[tuple[str, bytes]]
    value: bytes
    t0: float | None = None  # chunks only
    reencoded: bool = False


@dataclass(frozen=True)
class PublishReport:
    session_id: str
    topic: str
    chunks: int
    reencoded_chunks: int
    last_chunk_t0: float
    bytes_sent: int


def check_session_id(session_id: str) -> None:
    if not contract.SESSION_ID_PATTERN.fullmatch(session_id):
        raise InvalidInputError(
            f"session id {session_id!r} is not 1-128 letters, digits, '.', '_', ':' or '-'."
        )


def session_messages(
    video: Path,
    session_id: str,
    *,
    camera: str = "cam-0",
    chunk_seconds: float = 4.0,
    max_chunk_bytes: int = MAX_CHUNK_BYTES,
    max_height: int = DEFAULT_MAX_HEIGHT,
    start_info: dict[str, Any] | None = None,
    first_seq: int = 0,
) -> Iterator[Message]:
    """session_start, the chunks in order, session_end: the whole session as messages.

    Video that has to be re-encoded is scaled to at most ``max_height`` rows.
    """
    check_session_id(session_id)
    key = session_id.encode()
    seq = first_seq
    start = contract.control_value({"camera": camera, **(start_info or {})})
    yield Message(
        key, contract.headers_for(MessageType.SESSION_START, seq=seq, camera=camera), start
    )
    last_t0 = 0.0
    chunks = cut_chunks(
        video, chunk_seconds=chunk_seconds, max_bytes=max_chunk_bytes, max_height=max_height
    )
    for chunk in chunks:
        seq += 1
        headers = contract.headers_for(
            MessageType.CHUNK, seq=seq, camera=camera, t0=chunk.t0, content_type=chunk.content_type
        )
        last_t0 = chunk.t0
        yield Message(key, headers, chunk.data, t0=chunk.t0, reencoded=chunk.reencoded)
    seq += 1
    end = contract.control_value({"last_chunk_t0": last_t0})
    yield Message(key, contract.headers_for(MessageType.SESSION_END, seq=seq, camera=camera), end)


def publish_video(
    settings: Settings,
    video: Path,
    session_id: str,
    *,
    camera: str = "cam-0",
    chunk_seconds: float = 4.0,
    realtime: bool = False,
    max_height: int | None = None,
    start_info: dict[str, Any] | None = None,
    on_message: Callable[[Message], None] | None = None,
) -> PublishReport:
    """Send the session to ``settings.topic``; ``realtime`` paces chunks at wall-clock speed;
    re-encoded video has at most ``max_height`` rows (default: the settings')."""
    producer = make_producer(settings)
    chunks = reencoded = sent = 0
    last_t0 = 0.0
    began = time.monotonic()
    try:
        for message in session_messages(
            video,
            session_id,
            camera=camera,
            chunk_seconds=chunk_seconds,
            max_chunk_bytes=min(MAX_CHUNK_BYTES, settings.max_message_bytes),
            max_height=max_height or settings.publish_max_height,
            start_info=start_info,
        ):
            if realtime and message.t0 is not None:
                # a camera can send a chunk only once it has been recorded
                time.sleep(max(0.0, began + message.t0 - time.monotonic()))
            producer.send(
                settings.topic, key=message.key, value=message.value, headers=message.headers
            )
            if message.t0 is not None:
                chunks += 1
                reencoded += message.reencoded
                last_t0 = message.t0
            sent += len(message.value)
            if on_message is not None:
                on_message(message)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return PublishReport(session_id, settings.topic, chunks, reencoded, last_t0, sent)
