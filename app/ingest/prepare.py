"""The part of handling a record that needs no session state: check it and decode its video.

It runs on the decode pool, many records at once; the engine applies the results in offset
order, so parallel decoding never changes what a session sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from app import contract
from app.contract import ContractError, Envelope, MessageType
from app.errors import VideoError
from app.ingest.records import Record
from app.settings import Settings
from app.video import DecodedChunk, decode_chunk


@dataclass(frozen=True)
class Prepared:
    record: Record
    envelope: Envelope | None = None  # None when the record breaks the contract
    decoded: DecodedChunk | None = None  # chunks only
    error: str | None = None  # why the record is a dead letter


@dataclass(frozen=True)
class FrameNeeds:
    """What the memory needs of a chunk's frames: decoding keeps no more than this."""

    max_side: int  # longest side a frame is scaled to (the backbone resizes further)
    fps: float  # the memory's frames per second: only frames the timeline can emit are kept

    @classmethod
    def of(cls, image_size: int, fps: float) -> FrameNeeds:
        # twice the backbone's input: its antialiased resize still has the detail it needs,
        # and today's small synthetic videos are not touched at all
        return cls(max_side=2 * image_size, fps=fps)


def prepare(record: Record, settings: Settings, needs: FrameNeeds) -> Prepared:
    """Check and decode one record; every failure becomes the reason of a dead letter."""
    try:
        return _prepare(record, settings, needs)
    except Exception as exc:  # whatever a message holds, it must not stop the worker
        return Prepared(record, error=f"the message could not be read ({type(exc).__name__}).")


def _prepare(record: Record, settings: Settings, needs: FrameNeeds) -> Prepared:
    if record.unreadable is not None:
        return Prepared(record, error=record.unreadable)
    try:
        envelope = contract.parse(
            record.key, record.headers, record.value, max_value_bytes=settings.max_message_bytes
        )
    except ContractError as exc:
        return Prepared(record, error=str(exc))
    if envelope.type is not MessageType.CHUNK:
        return Prepared(record, envelope)
    try:
        decoded = decode_chunk(
            envelope.value,
            envelope.content_type or "",
            max_frame_pixels=settings.max_frame_pixels,
            max_seconds=settings.max_chunk_seconds,
            max_side=needs.max_side,
            sample_fps=needs.fps,
            t0_us=round((envelope.t0 or 0.0) * 1_000_000),
        )
    except VideoError as exc:
        return Prepared(record, envelope, error=str(exc))
    except Exception as exc:  # a decoder failure we did not foresee: the chunk is set aside
        return Prepared(
            record,
            envelope,
            error=f"the chunk could not be decoded ({type(exc).__name__}: {str(exc)[:200]}).",
        )
    return Prepared(record, envelope, decoded)
