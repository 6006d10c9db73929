"""Video for the contract: cut files into chunks, decode chunks, resample to the memory FPS."""

from app.video.chunker import DEFAULT_MAX_HEIGHT, Chunk, chunk_stream, cut_chunks
from app.video.decoder import DecodedChunk, decode_chunk, frame_to_rgb, scaled_size
from app.video.timeline import Timeline, frames_needed

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
