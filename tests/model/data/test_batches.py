"""The batch sampler: never two items of one video in a batch; each video in time order."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pytest

from model.data import epoch_batches, video_steps


@dataclass(frozen=True)
class _Example:  # what the sampler reads of an Example
    video_id: str
    last_step: int


def _dataset(rng: np.random.Generator, videos: int) -> tuple[dict, dict]:
    lengths = {f"v{i}": int(rng.integers(1, 80)) for i in range(videos)}
    examples = {
        v: [_Example(v, int(rng.integers(0, n))) for _ in range(int(rng.integers(0, 30)))]
        for v, n in lengths.items()
    }
    return lengths, examples


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("batch_size", [1, 3, 8, 40])
@pytest.mark.parametrize("per_clip", [1, 4])
def test_a_batch_never_holds_two_items_of_one_video(
    seed: int, batch_size: int, per_clip: int
) -> None:
    rng = np.random.default_rng(seed)
    lengths, examples = _dataset(rng, int(rng.integers(1, 20)))
    batches = epoch_batches(lengths, examples, 16, batch_size, rng, per_clip)
    clips = defaultdict(list)
    for batch in batches:
        ids = [step.video_id for step in batch]
        assert len(ids) == len(set(ids)), ids
        assert 1 <= len(batch) <= batch_size
        for step in batch:
            clips[step.video_id].append(step.clip)
            assert len(step.examples) <= per_clip
            assert len(set(map(id, step.examples))) == len(step.examples)
            for example in step.examples:  # its window ends in the clip written at this step
                assert example.video_id == step.video_id
                last_clip = -(-lengths[step.video_id] // 16) - 1
                assert min(example.last_step // 16, last_clip) == step.clip
    # every clip of every video, once, in time order: the memory is carried through it
    assert {v: c for v, c in clips.items()} == {
        v: list(range(-(-n // 16))) for v, n in lengths.items()
    }


def test_lanes_play_videos_side_by_side() -> None:
    rng = np.random.default_rng(0)
    lengths = {f"v{i}": 64 for i in range(6)}  # 4 clips each
    batches = epoch_batches(lengths, {}, 16, 3, rng)
    assert [len(b) for b in batches] == [3] * 8
    assert all(step.examples == () for b in batches for step in b)


def test_each_clip_asks_per_clip_of_the_queries_ending_in_it() -> None:
    rng = np.random.default_rng(0)
    examples = [_Example("v", s) for s in (3, 5, 20, 40, 44, 47)]
    steps = video_steps("v", 48, examples, 16, rng)
    assert [s.clip for s in steps] == [0, 1, 2]
    assert len(steps[0].examples) == 1 and steps[0].examples[0] in examples[:2]
    assert steps[1].examples == (examples[2],)
    assert len(steps[2].examples) == 1 and steps[2].examples[0] in examples[3:]
    drawn = {video_steps("v", 48, examples, 16, rng)[0].examples[0].last_step for _ in range(50)}
    assert drawn == {3, 5}  # other epochs draw the other query
    two = video_steps("v", 48, examples, 16, rng, per_clip=2)
    assert two[0].examples == tuple(examples[:2])  # in time order
    assert two[1].examples == (examples[2],)
    assert len(two[2].examples) == 2 and set(two[2].examples) <= set(examples[3:])
