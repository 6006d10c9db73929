"""The per-query re-reading baseline: a window cut into clips that stand in for memories,
and the clips' answers combined as the paper aggregates TubeDETR's."""

import numpy as np
import torch

from model.queries import ActivityPrediction, ObjectPrediction, ObjectQuery, TimePrediction
from model.rereading import clip_queries, combine, split_clips, window_memory

T, S, C = 4, 3, 5


def test_a_window_becomes_one_memory_row_per_clip_at_its_own_steps() -> None:
    window = torch.randn(10, S, C)  # 10 steps: clips of 4, 4 and 2
    clips = split_clips(window, T)
    assert [c.shape[1] for c in clips] == [4, 4, 2]
    memory = window_memory(clips, first_step=20, clip_frames=T)
    assert memory.batch_size == 3
    for k in range(3):
        steps = memory.time_index[k][memory.valid[k]]
        real = min(T, 10 - k * T)
        assert steps.unique().tolist() == list(range(20 + k * T, 20 + k * T + real))
    assert memory.frames_seen.tolist() == [24, 28, 30]


def test_each_clip_query_covers_its_part_of_the_window() -> None:
    query = ObjectQuery(memory_index=0, activity=1, start=20, end=30)
    parts = clip_queries(query, 3, T)
    assert [(p.memory_index, p.start, p.end) for p in parts] == [
        (0, 20, 24),
        (1, 24, 28),
        (2, 28, 30),
    ]
    assert all(p.activity == 1 for p in parts)


def test_clip_answers_combine_as_the_paper_aggregates_them() -> None:
    activity = combine(
        [ActivityPrediction(np.array([0.1, 0.9])), ActivityPrediction(np.array([0.7, 0.2]))]
    )
    assert np.array_equal(activity.probabilities, [0.7, 0.9])  # happened in any clip
    boxes = combine([ObjectPrediction(np.zeros((4, 4))), ObjectPrediction(np.ones((2, 4)))])
    assert boxes.boxes.shape == (6, 4) and boxes.boxes[-1].tolist() == [1, 1, 1, 1]
    best = combine([TimePrediction(20, 22, 0.3), TimePrediction(25, 27, 0.8)])
    assert (best.start, best.end) == (25, 27)
