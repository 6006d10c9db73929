"""Training sessions placed at a random point of a longer timeline (deviation).

Time positions are absolute frame steps with sinusoidal encodings (``model.encodings``):
a model trained on 4-minute sessions at 1 fps has seen steps 0-239 only, and a 40-minute
trip asks it about steps up to 2,399, encodings it never saw, in the sampler's scoring
encoder and in the answer's encoder and decoder. With ``TrainConfig.time_shift`` = s each
training video starts, for one epoch, at a step drawn uniformly from ``[0, s]``: its empty
memory has seen that many frames, so every time index the sampler writes, every query
window and every time target is moved by the same amount. What the model answers depends
on time differences only, which is true of a session wherever it lies, and the whole range
of steps a long trip reaches is trained on.

Only the training timeline moves: the token cache, the annotations and the validation
evaluation keep their own steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np

from model.queries import Query, Target, TimeTarget

#: No video shifted: every one starts at step 0 (the paper's timeline).
AT_ZERO: Mapping[str, int] = MappingProxyType({})


def draw_offsets(videos: Iterable[str], most: int, rng: np.random.Generator) -> dict[str, int]:
    """Each video's start on the training timeline for one epoch: uniform in ``[0, most]``;
    none drawn (every video at 0) when ``most`` is 0, so the random stream is untouched."""
    if most <= 0:
        return {}
    ordered = sorted(videos)
    starts = rng.integers(0, most + 1, size=len(ordered))
    return {video: int(s) for video, s in zip(ordered, starts, strict=True)}


def shift_query(query: Query, offset: int) -> Query:
    """``query`` with its window moved ``offset`` steps later."""
    if offset == 0:
        return query
    return dataclasses.replace(query, start=query.start + offset, end=query.end + offset)


def shift_target(target: Target, offset: int) -> Target:
    """``target`` moved with its query: a time target names session steps; activity and
    object targets are per window step and move with the window by themselves."""
    if offset == 0 or not isinstance(target, TimeTarget):
        return target
    return TimeTarget(target.start + offset, target.end + offset)
