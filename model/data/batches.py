"""The training data sampler: a batch never holds two queries of the same video.

Paper (Sec. "Memory Read/Write operations"): every video has one memory, and two items of
one video in a batch would both write it (a race). Here each batch position is a *lane*
that plays one video at a time, clip by clip in time order, so its memory is carried
through the video; when a video ends, the lane takes the next one. Lanes never share a
video, so no batch does.

Each step of a video writes its next clip (``clip_frames`` frames) and asks the queries whose
window ends in that clip: the first moment a memory that reads the video once could answer
them. When more than ``per_clip`` end in one clip, ``per_clip`` of them are drawn per epoch
(the others come up in other epochs). A clip in which no window ends is still written, with
no current query. Several queries of one step read the same freshly written memory, so
they do not race the way two writes of one video in a batch would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from model.data.examples import Example


@dataclass(frozen=True)
class Step:
    """One batch item: write clip ``clip`` of ``video_id``, then ask ``examples``."""

    video_id: str
    clip: int
    examples: tuple[Example, ...] = ()


def video_steps(
    video_id: str,
    num_steps: int,
    examples: Sequence[Example],
    clip_frames: int,
    rng: np.random.Generator,
    per_clip: int = 1,
) -> list[Step]:
    """One step per clip of the video, in time order, each with up to ``per_clip`` of the
    queries ending in it."""
    clips = math.ceil(num_steps / clip_frames)
    anchored: list[list[Example]] = [[] for _ in range(clips)]
    for example in examples:
        anchored[min(example.last_step // clip_frames, clips - 1)].append(example)
    steps = []
    for c, ending in enumerate(anchored):
        drawn: np.ndarray | list[int] = rng.permutation(len(ending))[:per_clip] if ending else []
        steps.append(Step(video_id, c, tuple(ending[int(i)] for i in sorted(drawn))))
    return steps


def epoch_batches(
    num_steps: Mapping[str, int],
    examples: Mapping[str, Sequence[Example]],
    clip_frames: int,
    batch_size: int,
    rng: np.random.Generator,
    per_clip: int = 1,
) -> list[list[Step]]:
    """The batches of one epoch: videos in random order, ``batch_size`` lanes.

    Args:
        num_steps: video id → its length in memory steps.
        examples: video id → its examples (any order).
        per_clip: queries asked at most per step of a video.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    order = [str(v) for v in rng.permutation(sorted(num_steps))]
    queue = [
        video_steps(v, num_steps[v], examples.get(v, ()), clip_frames, rng, per_clip) for v in order
    ]
    queue.reverse()  # pop() from the end takes videos in ``order``
    lanes: list[list[Step]] = []
    batches: list[list[Step]] = []
    while queue or lanes:
        while len(lanes) < batch_size and queue:
            lanes.append(queue.pop())
        batches.append([lane.pop(0) for lane in lanes])
        lanes = [lane for lane in lanes if lane]
    return batches
