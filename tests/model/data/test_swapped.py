"""Swapped-product twins: same window as a positive question, a product nobody touched."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model import ModelConfig
from model.data import TokenCache, load_split
from model.data.swapped import TWIN_SUFFIX, is_twin, swapped_twins
from model.evaluate.metrics import score_activity
from model.network import LongVMNet
from model.synth import read_dataset
from model.synth.records import ActivityQueryRecord


def test_each_twin_keeps_the_window_and_asks_about_an_untouched_product_of_the_store(
    store_dataset: Path,
) -> None:
    dataset = read_dataset(store_dataset)
    twins_seen = 0
    for video_id in dataset.splits["train"]:
        video = dataset.videos[video_id]
        records = [q for q in dataset.queries["train"] if q.video_id == video_id]
        originals = {q.query_id: q for q in records}
        twins = swapped_twins(video, records, dataset.skus_of(video_id), 1.0)
        positives = [q for q in records if isinstance(q, ActivityQueryRecord) and q.activities]
        assert len(twins) <= len(positives)
        for twin in twins:
            original = originals[twin.query_id.removesuffix(TWIN_SUFFIX)]
            assert isinstance(original, ActivityQueryRecord) and original.activities
            assert (twin.start, twin.end, twin.bucket) == (
                original.start,
                original.end,
                original.bucket,
            )
            assert twin.activities == ()
            assert twin.sku != original.sku and twin.sku in dataset.skus_of(video_id)
            touched = {s.sku for s in video.spans if s.start < twin.end and s.end > twin.start}
            assert twin.sku not in touched
        twins_seen += len(twins)
        # the same on every load, and a fraction keeps a subset of the whole set
        assert twins == swapped_twins(video, records, dataset.skus_of(video_id), 1.0)
        half = swapped_twins(video, records, dataset.skus_of(video_id), 0.5)
        assert set(half) <= set(twins)
        assert swapped_twins(video, records, dataset.skus_of(video_id), 0.0) == []
    assert twins_seen > 10


def test_load_split_adds_the_twins_as_negative_examples(
    store_dataset: Path, small_cfg: ModelConfig, tmp_path: Path
) -> None:
    dataset = read_dataset(store_dataset)
    cache = TokenCache(tmp_path, small_cfg, LongVMNet(small_cfg).backbone)
    plain = load_split(dataset, "train", small_cfg, cache)
    doubled = load_split(dataset, "train", small_cfg, cache, swap_fraction=1.0)
    for video_id, examples in doubled.examples.items():
        twins = [e for e in examples if is_twin(e.record.query_id)]
        assert len(examples) == len(plain.examples[video_id]) + len(twins)
        assert all(e.target.labels == [] for e in twins)
        assert [e.last_step for e in examples] == sorted(e.last_step for e in examples)
    assert not any(is_twin(e.record.query_id) for ex in plain.examples.values() for e in ex)


def test_a_twin_scores_swap_reject_only_when_no_activity_reaches_one_half() -> None:
    said_nothing = score_activity("q~swap", "short", np.array([0.1, 0.49, 0.2]), [], twin=True)
    said_a_put = score_activity("q~swap", "short", np.array([0.1, 0.51, 0.2]), [], twin=True)
    assert said_nothing.values == {"swap-reject": 1.0}
    assert said_a_put.values == {"swap-reject": 0.0}
    assert score_activity("q", "short", np.array([0.1, 0.5, 0.2]), []).values == {}
