"""The per-query re-reading baseline (the paper's TubeDETR comparison): no memory at all.

For every question the window's own frames are read again and answered with the same
encoder-decoder and heads, their tokens standing in for a sampled memory. As TubeDETR's
inference in the paper, a long window is cut into non-overlapping clips of ``T`` frames
(``T x S`` tokens, one write's clip) answered one by one and aggregated; one pass
over a whole long window costs more (twice as much for an 18-minute window with the
shipped ``tiny``). cartmem's accuracy is judged
against this baseline on the same queries, and its speed too (``cartmem bench speedup``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from model.candidates import ClipTokens
from model.memory import Memory
from model.queries import ActivityPrediction, ObjectPrediction, Prediction, Query, TimePrediction

_P = TypeVar("_P", ActivityPrediction, ObjectPrediction, TimePrediction)


def window_memory(clips: Sequence[Tensor], first_step: int, clip_frames: int) -> Memory:
    """One "memory" per clip of a window: its ``T x S`` tokens, in place of sampled ones.

    Args:
        clips: backbone tokens ``(1, t_k, S, C)`` of consecutive clips, the last may be
            shorter than ``clip_frames`` (it is padded and masked).
        first_step: the window's first step (memory-FPS frame index in the session).
    """
    memories = []
    for k, tokens in enumerate(clips):
        start = torch.tensor([first_step + k * clip_frames], device=tokens.device)
        clip = ClipTokens.from_frames(tokens, start, clip_frames)  # (1, T*S, C), masked
        memories.append(
            Memory(
                clip.tokens, clip.time_index, clip.spatial_index, clip.valid, start + clip.frames
            )
        )
    return Memory.cat(memories)


def clip_queries(query: Query, clips: int, clip_frames: int) -> list[Query]:
    """``query`` cut to each clip's part of the window, clip ``k`` read from memory row ``k``."""
    return [
        dataclasses.replace(
            query,
            memory_index=k,
            start=query.start + k * clip_frames,
            end=min(query.end, query.start + (k + 1) * clip_frames),
        )
        for k in range(clips)
    ]


def combine(parts: Sequence[Prediction]) -> Prediction:
    """The window's answer from its clips' answers (the paper aggregates TubeDETR's clips).

    Activity: a class happened in the window if it happened in any clip (max). Object: the
    clips' boxes in step order. Time: the clip whose best (start, end) pair scores highest.
    """
    first = parts[0]
    if isinstance(first, ActivityPrediction):
        activity = _as_kind(parts, ActivityPrediction)
        window = np.max([p.probabilities for p in activity], axis=0)
        steps = [p.steps for p in activity if p.steps is not None]
        if len(steps) < len(activity):
            return ActivityPrediction(window)
        return ActivityPrediction(window, np.concatenate(steps))
    if isinstance(first, ObjectPrediction):
        return ObjectPrediction(
            np.concatenate([p.boxes for p in _as_kind(parts, ObjectPrediction)])
        )
    return max(_as_kind(parts, TimePrediction), key=lambda p: p.score)


def _as_kind(parts: Sequence[Prediction], kind: type[_P]) -> list[_P]:
    """``parts``, all of ``kind``: the clips of one window answer the same question."""
    same = [p for p in parts if isinstance(p, kind)]
    assert len(same) == len(parts), f"a window's clips must all answer as {kind.__name__}"
    return same


def split_clips(window_tokens: Tensor, clip_frames: int) -> list[Tensor]:
    """Backbone tokens of a window ``(L, S, C)`` as consecutive clips ``(1, t_k, S, C)``."""
    return [
        window_tokens[None, i : i + clip_frames]
        for i in range(0, window_tokens.shape[0], clip_frames)
    ]
