"""Naming a put's product: handlings found from spans, the sum of model and template votes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.bench.identify_fusion import (
    fused_choice,
    identify,
    kept_answers,
    put_handlings,
    template_votes,
)
from model.synth import generate_dataset
from model.synth.reader import read_dataset
from tests.small_synth import small_synth_config


def test_a_put_ends_the_handling_of_the_spans_that_touch_it() -> None:
    spans = [
        ("take_from_shelf", "A", 10.0, 12.0),
        ("inspect", "A", 12.0, 15.0),
        ("put_in_cart", "A", 15.0, 16.5),  # take, inspect, put: one handling
        ("take_from_shelf", "B", 16.5, 18.0),  # another product right after
        ("put_in_cart", "B", 18.0, 19.0),
        ("take_out_of_cart", "A", 30.0, 31.0),
        ("inspect", "A", 31.0, 33.0),
        ("put_in_cart", "A", 33.0, 34.0),  # its own handling, not the first one's
    ]
    found = put_handlings(spans)
    assert [(h.sku, h.start, h.put_start, h.end) for h in found] == [
        ("A", 10.0, 15.0, 16.5),
        ("B", 16.5, 18.0, 19.0),
        ("A", 30.0, 33.0, 34.0),
    ]


def test_the_sum_follows_the_model_when_sure_and_the_template_when_not() -> None:
    votes = np.array([-6.0, -0.5, -4.0])  # the template says product 1
    sure = np.array([0.95, 0.02, 0.01])
    torn = np.array([0.5, 0.45, 0.1])
    assert fused_choice(sure, votes, 0.1) == 0
    assert fused_choice(torn, votes, 0.1) == 1
    assert fused_choice(sure, votes, 0.0) == 0  # weight 0: the model alone


def test_template_votes_pick_the_pictured_product() -> None:
    pictures = np.full((2, 64, 64, 3), 236, dtype=np.uint8)
    pictures[0, 8:56, 20:44] = (200, 30, 30)
    pictures[1, 8:56, 20:44] = (30, 30, 200)
    crops = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    crops[:, 4:60, 4:60] = pictures[1, 4:60, 4:60] // 2  # product 1, dimly lit, twice
    votes = template_votes(crops, pictures)
    assert votes.shape == (2,) and int(np.argmax(votes)) == 1


def _answers(data: Path, right: bool) -> list[dict]:
    """Per-step put answers: the annotated product's at its puts (``right``), or every
    product the same at every step (a model that cannot tell them apart)."""
    dataset = read_dataset(data)
    sessions = []
    for video in dataset.videos.values():
        skus = list(dataset.skus_of(video.video_id))
        steps = round(video.duration)
        put = {sku: [0.3] * steps for sku in skus}
        if right:
            put = {sku: [0.0] * steps for sku in skus}
            for span in video.spans:
                if span.activity == "put_in_cart":
                    for k in range(int(span.start), min(steps, int(np.ceil(span.end)) + 1)):
                        put[span.sku][k] = 0.9
        sessions.append(
            {
                "video_id": video.video_id,
                "spans": [(s.activity, s.sku, s.start, s.end) for s in video.spans],
                "steps": {sku: {"fps": 1.0, "put_in_cart": put[sku]} for sku in skus},
            }
        )
    return sessions


def test_identify_scores_the_model_the_template_and_their_sum(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_dataset(data, videos=2, minutes=0.5, seed=3, config=small_synth_config())
    dataset = read_dataset(data)
    right = identify(_answers(data, right=True), dataset, [0.1])
    assert right["puts"] > 0
    assert right["model_top1"] == 1.0
    blind = identify(_answers(data, right=False), dataset, [0.1])
    assert blind["puts"] == right["puts"]
    assert blind["template_top1"] == right["template_top1"]
    # a model that says the same of every product leaves the choice to the template
    assert blind["fused"][0]["top1"] == blind["template_top1"]


def test_kept_answers_say_what_is_wrong_with_a_file(tmp_path: Path) -> None:
    kept = tmp_path / "answers.json"
    kept.write_text(json.dumps([{"steps": {}, "boxes": {}}, {"steps": {}, "boxes": {}}]))
    assert len(kept_answers(kept, 1, with_boxes=True)) == 1
    no_boxes = tmp_path / "old.json"
    no_boxes.write_text(json.dumps([{"steps": {}}]))
    assert kept_answers(no_boxes, None, with_boxes=False) == [{"steps": {}}]
    with pytest.raises(ValueError, match="has no boxes"):
        kept_answers(no_boxes, None, with_boxes=True)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"moments": {}}))
    with pytest.raises(ValueError, match="is not a list of sessions"):
        kept_answers(other, None, with_boxes=False)
