"""The checkpoints shipped in the package load and answer every kind of query."""

from __future__ import annotations

import numpy as np
import pytest

from model import (
    ActivityPrediction,
    ActivityQuery,
    LongVMNet,
    ObjectPrediction,
    ObjectQuery,
    TimePrediction,
    TimeQuery,
)
from model.shipped import default_checkpoint


@pytest.mark.parametrize(
    ("name", "mixer", "fusion"),
    [("tiny", "attention", "decoder"), ("tiny-early", "attention", "encoder"),
     ("tiny-mamba", "mamba", "decoder")],
)  # fmt: skip
def test_a_shipped_checkpoint_answers_from_a_memory(name: str, mixer: str, fusion: str) -> None:
    path = default_checkpoint(name)
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size <= 25 * 2**20, f"{size / 2**20:.1f} MB"
    net = LongVMNet.load(path)
    cfg = net.cfg
    assert cfg.name == "tiny" and cfg.writer == "neural" and cfg.mixer == mixer
    assert cfg.query_fusion == fusion
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (1, 2 * cfg.clip_frames, 72, 96, 3), dtype=np.uint8)
    memory = net.populate(frames)
    assert memory.tokens.shape == (1, cfg.memory_size, cfg.backbone_channels)
    product = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    activity, box, when = net.answer(
        memory,
        [
            ActivityQuery(0, product, 0, 20),
            ObjectQuery(0, 1, 4, 12),
            TimeQuery(0, 0, product, 2, 30),
        ],
    )
    assert isinstance(activity, ActivityPrediction)
    assert activity.probabilities.shape == (cfg.num_activities,)
    assert isinstance(box, ObjectPrediction) and box.boxes.shape == (8, 4)
    assert ((box.boxes >= 0) & (box.boxes <= 1)).all()
    assert isinstance(when, TimePrediction) and 2 <= when.start < when.end <= 30


def test_the_served_pair_is_tiny_led_with_two_partners_within_the_size_limit() -> None:
    from model.pair import ModelPair, load_served
    from model.pair_config import pair_members
    from model.shipped import SERVED

    path = default_checkpoint(SERVED)
    name, lead, partners = pair_members(path)
    assert (name, lead, partners) == (
        SERVED,
        default_checkpoint("tiny"),
        (default_checkpoint("tiny-early"), default_checkpoint("tiny-b160")),
    )
    size = sum(f.stat().st_size for d in (path, lead, *partners) for f in d.iterdir())
    assert size <= 25 * 2**20, f"{size / 2**20:.1f} MB"
    pair = load_served(path)
    assert isinstance(pair, ModelPair) and pair.cfg.memory_size == 4096 + 2048 + 4096
