"""The training data sampler: a batch never holds two queries of the same video.

Paper (Sec. "Memory Read/Write operations"): every video has one memory, and two items of
one video in a batch would both write it (a race). Here each batch position is a *lane*
that plays one video at a time, clip by clip in time order, so its memory is carried
through the video; when a video ends, the lane takes the next one. Lanes never share a
video, so no batch does.

Each step of a video writes its next clip (``clip_frames`` frames) and asks one query whose
window ends in that clip: the first moment a memory that reads the video once could answer
it. Several queries may end in one clip; one of them is drawn per epoch (the others come up
in other epochs). A clip in which no window ends is still written, with no current query.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from model.data.examples import Example


@dataclass(frozen=True)
class Step:
    """One batch item: write clip ``clip`` of ``video_id``, then ask ``example`` (if any)."""

    video_id: str
    clip: int
    example: Example | None


def video_steps(
    video_id: str,
    num_steps: int,
    examples: Sequence[Example],
    clip_frames: int,
    rng: np.random.Generator,
) -> list[Step]:
    """One step per clip of the video, in time order, each with a query ending in it."""
    clips = math.ceil(num_steps / clip_frames)
    anchored: list[list[Example]] = [[] for _ in range(clips)]
    for example in examples:
        anchored[min(example.last_step // clip_frames, clips - 1)].append(example)
    return [
        Step(video_id, c, anchored[c][int(rng.integers(len(anchored[c])))] if anchored[c] else None)
        for c in range(clips)
    ]


def epoch_batches(
    num_steps: Mapping[str, int],
    examples: Mapping[str, Sequence[Example]],
    clip_frames: int,
    batch_size: int,
    rng: np.random.Generator,
) -> list[list[Step]]:
    """The batches of one epoch: videos in random order, ``batch_size`` lanes.

    Args:
        num_steps: video id → its length in memory steps.
        examples: video id → its examples (any order).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    order = [str(v) for v in rng.permutation(sorted(num_steps))]
    queue = [video_steps(v, num_steps[v], examples.get(v, ()), clip_frames, rng) for v in order]
    queue.reverse()  # pop() from the end takes videos in ``order``
    lanes: list[list[Step]] = []
    batches: list[list[Step]] = []
    while queue or lanes:
        while len(lanes) < batch_size and queue:
            lanes.append(queue.pop())
        batches.append([lane.pop(0) for lane in lanes])
        lanes = [lane for lane in lanes if lane]
    return batches
