"""Two-stage evaluation: one pass per video, answers from memory only, scored per bucket."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model import LongVMNet, ModelConfig, ObjectPrediction, TimePrediction
from model.data import TokenCache, load_split
from model.data.examples import Example
from model.evaluate import evaluate, evaluate_baselines, populate, score
from model.evaluate.metrics import AGE_BUCKETS
from model.queries import ObjectQuery, ObjectTarget, TimeQuery, TimeTarget
from model.synth import read_dataset
from model.synth.records import ObjectQueryRecord, TimeQueryRecord


@pytest.fixture(scope="module")
def net_and_data(small_dataset: Path, small_cfg: ModelConfig, tmp_path_factory) -> tuple:
    torch.manual_seed(0)
    net = LongVMNet(small_cfg).eval()
    cache = TokenCache(tmp_path_factory.mktemp("cache"), small_cfg, net.backbone)
    return net, load_split(read_dataset(small_dataset), "test", small_cfg, cache)


@pytest.mark.parametrize("writer", ["neural", "random", "merge"])
def test_every_writer_runs_the_same_two_stages(net_and_data: tuple, writer: str) -> None:
    net, data = net_and_data
    result = evaluate(net, data, writer=writer)
    assert result.writer == writer and net.cfg.writer == "neural"  # restored afterwards
    assert result.videos == 1 and result.queries == data.num_examples()
    counts = result.summary.counts
    assert counts["recall@1x"]["all"] > 0 and counts["tIoU>0.3"]["all"] > 0
    assert counts["gt-vIoU>0.3"]["all"] > 0
    for name, by_bucket in result.summary.percent.items():
        for value in by_bucket.values():
            assert value is None or 0.0 <= value <= 100.0, name
    # The same scores grouped by window age: every query in exactly one group.
    assert result.by_age is not None
    for name, by_age in result.by_age.counts.items():
        assert sum(by_age[a] for a in AGE_BUCKETS) == by_age["all"] == counts[name]["all"]
        assert result.by_age.percent[name]["all"] == result.summary.percent[name]["all"]


def test_stage_one_reads_the_video_once_into_a_fixed_size_memory(net_and_data: tuple) -> None:
    net, data = net_and_data
    memories = populate(net, data)
    (video_id,) = memories
    memory = memories[video_id]
    assert memory.size == net.cfg.memory_size
    assert int(memory.frames_seen) == data.tokens[video_id].shape[0]


def _object_example() -> Example:
    boxes = tuple((t, (0.5, 0.5, 0.2, 0.2)) for t in (10.0, 10.2, 10.4, 10.6, 10.8, 11.0, 11.2))
    record = ObjectQueryRecord("q", "v", "short", 8.0, 14.0, "inspect", "S", 10.0, 11.4, boxes)
    target = ObjectTarget(np.zeros((6, 4)), np.zeros(6, dtype=bool))
    return Example(record, ObjectQuery(0, 2, 8, 14), target)


def test_each_annotated_frame_is_judged_by_the_nearest_steps_box() -> None:
    example = _object_example()
    right, wrong = (0.5, 0.5, 0.2, 0.2), (0.1, 0.1, 0.05, 0.05)
    # rows are steps 8..13; frames 10.0-10.4 -> step 10, 10.6-11.2 -> step 11 (nearest)
    only_11 = np.array([wrong, wrong, wrong, right, wrong, wrong])
    assert score(example, ObjectPrediction(only_11), 1.0).values == {"gt-vIoU>0.3": 1.0}  # 4/7
    # (flooring times would give 2/7 here and fail)
    outside = np.array([right, right, wrong, wrong, right, right])
    assert score(example, ObjectPrediction(outside), 1.0).values == {"gt-vIoU>0.3": 0.0}


def test_time_answers_are_judged_in_seconds() -> None:
    record = TimeQueryRecord("q", "v", "short", 8.0, 20.0, "inspect", "S", 10.6, 13.6)
    example = Example(
        record, TimeQuery(0, 2, np.zeros((4, 4, 3), np.uint8), 8, 20), TimeTarget(11, 14)
    )
    # steps [11, 14) stand for [10.5, 13.5): tIoU with [10.6, 13.6) = 2.9 / 3.1
    assert score(example, TimePrediction(11, 14, 0.9), 1.0).values == {"tIoU>0.3": 1.0}
    assert score(example, TimePrediction(16, 20, 0.9), 1.0).values == {"tIoU>0.3": 0.0}


def test_trivial_baselines(small_dataset: Path) -> None:
    dataset = read_dataset(small_dataset)
    summary = evaluate_baselines(
        dataset.queries["test"], dataset.queries["train"], dataset.activities
    )
    assert summary.percent["recall@3x"]["all"] is not None
    assert summary.percent["gt-vIoU>0.3"]["all"] == 0.0  # products are far smaller than a frame
    assert summary.counts["tIoU>0.3"]["all"] > 0
