"""Training videos placed at a random point of a longer timeline (``--time-shift``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model import ModelConfig
from model.data.batches import Step
from model.errors import ConfigError
from model.queries import ActivityQuery, ActivityTarget, TimeQuery, TimeTarget
from model.train import TrainConfig
from model.train.loop import batch_queries, gather_memories
from model.train.time_shift import draw_offsets, shift_query, shift_target
from tests.model.train.test_train import _FAST, train_and_measure

_IMAGE = np.zeros((8, 8, 3), np.uint8)


def test_offsets_are_drawn_per_video_within_the_bound_and_none_without_a_shift() -> None:
    videos = [f"v{i}" for i in range(200)]
    offsets = draw_offsets(videos, 3600, np.random.default_rng(0))
    assert sorted(offsets) == sorted(videos)
    assert min(offsets.values()) >= 0 and max(offsets.values()) <= 3600
    assert max(offsets.values()) > 1800  # spread over the range, not all near 0
    assert offsets == draw_offsets(reversed(videos), 3600, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    assert draw_offsets(videos, 0, rng) == {}
    assert rng.integers(1 << 30) == np.random.default_rng(0).integers(1 << 30)  # untouched


def test_a_time_question_and_its_answer_move_together_and_other_targets_stay() -> None:
    query = TimeQuery(0, 1, _IMAGE, 10, 30)
    moved = shift_query(query, 500)
    assert (moved.start, moved.end, moved.activity) == (510, 530, 1)
    assert shift_target(TimeTarget(12, 15), 500) == TimeTarget(512, 515)
    labels = ActivityTarget([1])
    assert shift_target(labels, 500) is labels  # per window step: moves with the window
    assert shift_query(query, 0) is query


def test_a_video_starts_at_its_offset_and_its_questions_follow() -> None:
    cfg = ModelConfig.preset("tiny", memory_size=8)
    memory = gather_memories({}, [Step("a", 0), Step("b", 0)], cfg, torch.device("cpu"), {"a": 7})
    assert memory.frames_seen.tolist() == [7, 0]

    class _Example:
        query = ActivityQuery(0, _IMAGE, 2, 5)
        target = ActivityTarget([0])

        def query_at(self, row: int) -> ActivityQuery:
            return ActivityQuery(row, _IMAGE, 2, 5)

    example = _Example()
    queries, _ = batch_queries([Step("a", 0, (example,))], {}, None, {"a": 7})
    assert [(q.start, q.end) for q in queries] == [(9, 12)]


def test_a_negative_shift_is_refused() -> None:
    with pytest.raises(ConfigError):
        TrainConfig(time_shift=-1)


def test_a_short_run_on_a_shifted_timeline_lowers_the_loss_on_the_real_one(
    small_dataset: Path, small_overrides: dict, tmp_path: Path
) -> None:
    """Trained at steps 0-500 later than its videos, the model still answers them where they
    are: what it learnt depends on time differences."""
    overrides = small_overrides | {"query_fusion": "decoder", "decoder_self_radius": 2}
    config = TrainConfig(epochs=8, eval_every=8, time_shift=500, **_FAST)
    before, after, _lines, net = train_and_measure(small_dataset, config, overrides, tmp_path)
    assert net.cfg.query_fusion == "decoder"
    assert after < 0.7 * before, (before, after)
