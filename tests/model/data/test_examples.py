"""Dataset query records → model queries and targets, against the annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model import ActivityQuery, ModelConfig, ObjectQuery, TimeQuery
from model.data import load_catalog_images, make_example
from model.synth import read_dataset
from model.synth.errors import DatasetError
from model.synth.records import ObjectQueryRecord, TimeQueryRecord


@pytest.fixture(scope="module")
def converted(small_dataset: Path, small_cfg: ModelConfig) -> list:
    dataset = read_dataset(small_dataset)
    images = load_catalog_images(dataset)
    out = []
    for record in dataset.queries["train"]:
        steps = int(np.ceil(dataset.videos[record.video_id].duration * small_cfg.fps))
        out.append((record, make_example(record, small_cfg, steps, images), steps))
    return out


def test_every_kind_becomes_its_query_with_a_window_inside_the_video(converted: list) -> None:
    kinds = {ActivityQuery: "activity", ObjectQuery: "object", TimeQuery: "time"}
    assert {type(e.query) for _, e, _ in converted} == set(kinds)
    for record, example, steps in converted:
        assert kinds[type(example.query)] == record.kind
        assert 0 <= example.query.start < example.query.end <= steps
        assert example.query.start >= record.start - 1e-6  # instants inside the window
        assert (example.query.end - 1) < record.end + 1e-6


def test_time_targets_lie_inside_the_window_and_match_the_span(converted: list) -> None:
    for record, example, _ in converted:
        if isinstance(record, TimeQueryRecord):
            t, q = example.target, example.query
            assert q.start <= t.start < t.end <= q.end
            assert abs(t.start - record.answer_start) <= 1 and abs(t.end - record.answer_end) <= 1


def test_object_targets_are_the_annotated_boxes_at_the_steps_instants(converted: list) -> None:
    checked = 0
    for record, example, _ in converted:
        if not isinstance(record, ObjectQueryRecord):
            continue
        t, q = example.target, example.query
        assert t.boxes.shape == (q.end - q.start, 4) and t.present.shape == (q.end - q.start,)
        boxes = dict(record.boxes)
        for i in range(q.end - q.start):
            instant = float(q.start + i)
            inside = record.answer_start <= instant < record.answer_end
            assert bool(t.present[i]) == inside
            if inside:
                np.testing.assert_allclose(
                    t.boxes[i], boxes[min(boxes, key=lambda x: abs(x - instant))]
                )
                checked += 1
    assert checked > 0


def test_activity_labels_must_be_the_models(small_dataset: Path) -> None:
    from model.data import load_split

    cfg = ModelConfig.preset("tiny", activity_labels=("a", "b"))
    with pytest.raises(DatasetError):
        load_split(read_dataset(small_dataset), "train", cfg, cache=None)


def test_step_labels_mark_the_products_own_activities_and_leave_their_edges_unjudged() -> None:
    from model.data.examples import step_labels
    from model.synth.records import Span

    cfg = ModelConfig.preset("tiny")  # 1 FPS: step k is the instant k seconds
    put, take = (
        cfg.activity_labels.index("put_in_cart"),
        cfg.activity_labels.index("take_from_shelf"),
    )
    spans = [
        Span("take_from_shelf", "A", 2.5, 4.2),  # instants 3 and 4
        Span("put_in_cart", "A", 6.0, 7.0),  # instant 6
        Span("put_in_cart", "B", 0.0, 10.0),  # another product: never A's label
    ]
    labels = step_labels(cfg, "A", spans, 1, 9)  # window steps 1..8
    assert labels.shape == (8, cfg.num_activities)
    assert [k + 1 for k in np.flatnonzero(labels[:, take] == 1)] == [3, 4]
    assert [k + 1 for k in np.flatnonzero(labels[:, take] == -1)] == [2, 5]
    assert [k + 1 for k in np.flatnonzero(labels[:, put] == 1)] == [6]
    assert [k + 1 for k in np.flatnonzero(labels[:, put] == -1)] == [5, 7]
    others = np.delete(labels, [put, take], axis=1)
    assert (others == 0).all()
    assert (step_labels(cfg, "C", spans, 1, 9) == 0).all()
