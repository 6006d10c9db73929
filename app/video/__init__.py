"""Video for the contract: cut files into chunks, decode chunks, resample to the memory FPS,
and keep the cart band of the frames.

The names below load their module on first use, so that a reader of the cart band
(reconciliation, the answer worker) does not load the video codecs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.video.chunker import DEFAULT_MAX_HEIGHT, Chunk, chunk_stream, cut_chunks
    from app.video.decoder import DecodedChunk, decode_chunk, frame_to_rgb, scaled_size
    from app.video.timeline import Timeline, frames_needed

_HOMES = {
    "DEFAULT_MAX_HEIGHT": "chunker",
    "Chunk": "chunker",
    "chunk_stream": "chunker",
    "cut_chunks": "chunker",
    "DecodedChunk": "decoder",
    "decode_chunk": "decoder",
    "frame_to_rgb": "decoder",
    "scaled_size": "decoder",
    "Timeline": "timeline",
    "frames_needed": "timeline",
}

__all__ = [
    "DEFAULT_MAX_HEIGHT",
    "Chunk",
    "DecodedChunk",
    "Timeline",
    "chunk_stream",
    "cut_chunks",
    "decode_chunk",
    "frame_to_rgb",
    "frames_needed",
    "scaled_size",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'app.video' has no attribute {name!r}")
    return getattr(importlib.import_module(f"app.video.{home}"), name)
