"""Cart moves re-identified with pixels: held seconds, fused scores, beliefs, and a whole
session read from a generated dataset."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.bench.identify_fusion import model_boxes
from app.bench.pixel_moments import (
    fused_peaks,
    held_steps,
    in_cart_owners,
    moment_sources,
    score_sessions,
)
from app.bench.scan_repair import step_moments
from app.reconcile.moves import Moment
from model.synth import VideoConfig, generate_dataset
from model.synth.reader import read_dataset
from tests.small_synth import small_synth_config

LABELS = ("take_from_shelf", "put_in_cart", "inspect", "return_to_shelf", "take_out_of_cart")


def test_an_item_is_held_before_a_put_and_after_a_take_out() -> None:
    put = Moment(+1, 10, 12, np.ones(2))
    out = Moment(-1, 10, 12, np.ones(2))
    assert held_steps(put, 100, 4) == range(6, 12)
    assert held_steps(out, 100, 4) == range(10, 16)
    assert held_steps(Moment(+1, 1, 2, np.ones(2)), 100, 4) == range(0, 2)  # the session's start
    assert held_steps(Moment(-1, 98, 99, np.ones(2)), 100, 4) == range(98, 100)  # and its end


def test_fused_peaks_follow_the_pixels_where_the_model_is_torn() -> None:
    torn = Moment(+1, 0, 1, np.array([0.5, 0.45, 0.05]))
    votes = np.array([-8.0, -1.0, -9.0])  # the pixels say product 1
    assert int(fused_peaks(torn, votes, 0.0).argmax()) == 0  # weight 0: the model alone
    fused = fused_peaks(torn, votes, 0.1)
    assert int(fused.argmax()) == 1
    assert np.isclose(fused.sum(), 1.0)
    # a log ratio of two fused peaks is their score difference (the scans' repair cost)
    expected = np.log(0.45 + 1e-4) - np.log(0.5 + 1e-4) + 0.1 * (votes[1] - votes[0])
    assert np.isclose(np.log(fused[1] / fused[0]), expected)


def test_a_take_out_goes_to_a_product_in_the_cart() -> None:
    moments = [
        Moment(-1, 20, 21, np.array([0.6, 0.3, 0.1])),  # A looks likelier, but only B is in
        Moment(+1, 5, 6, np.array([0.1, 0.8, 0.1])),  # B put in first (moments unordered)
        Moment(-1, 30, 31, np.array([0.2, 0.3, 0.5])),  # the cart is empty: its strongest
    ]
    assert in_cart_owners(moments) == [1, 1, 2]


def test_moments_are_matched_to_the_annotated_moves() -> None:
    put = [0.0] * 30
    put[3] = put[4] = 0.9  # the put at 3-5 s
    put[20] = 0.8  # a put where nothing was put
    quiet = [0.0] * 30
    session = {
        "spans": [
            ("put_in_cart", "A", 3.0, 5.0),
            ("put_in_cart", "B", 10.0, 11.0),  # no moment: missed
            ("take_out_of_cart", "A", 25.0, 26.0),  # missed too
        ],
        "steps": {
            "A": {"fps": 1.0, "put_in_cart": put, "take_out_of_cart": quiet},
            "B": {"fps": 1.0, "put_in_cart": quiet, "take_out_of_cart": quiet},
        },
    }
    put[26] = 0.7  # a take-out at 25-26 s read as a put
    assert moment_sources([session]) == {
        "put_in_cart": {
            "found": 1,
            "missed": 1,
            "spurious": 2,
            "spurious_on": {"nothing": 1, "take_out_of_cart": 1},
        },
        "take_out_of_cart": {"found": 0, "missed": 1, "spurious": 0, "spurious_on": {}},
    }


def test_model_boxes_take_the_box_of_the_most_likely_activity() -> None:
    quiet = [0.0, 0.0, 0.0]
    session = {
        "steps": {
            "A": {"fps": 1.0, "put_in_cart": [0.9, 0.0, 0.1], "inspect": quiet},
            "B": {"fps": 1.0, "put_in_cart": quiet, "inspect": [0.2, 0.7, 0.0]},
        },
        "boxes": {
            "put_in_cart": [[0.1, 0.1, 0.1, 0.1]] * 3,
            "inspect": [[0.5, 0.5, 0.2, 0.2]] * 3,
        },
    }
    boxes = model_boxes(session)
    assert boxes.shape == (3, 4)
    assert boxes[:, 0].tolist() == [0.1, 0.5, 0.1]


def _sessions(data: Path, torn: bool) -> list[dict[str, Any]]:
    """Answers of a model that finds every annotated put and take-out with the annotation's
    box, and names its product (or, ``torn``, says the same of every product)."""
    dataset = read_dataset(data)
    out = []
    for video in dataset.videos.values():
        skus = list(dataset.skus_of(video.video_id))
        steps = round(video.duration)
        series = {sku: {label: [0.0] * steps for label in LABELS} for sku in skus}
        boxes = {label: [[0.5, 0.5, 0.2, 0.2]] * steps for label in LABELS}
        for span in video.spans:
            if span.activity not in ("put_in_cart", "take_out_of_cart"):
                continue
            for k in range(int(span.start), min(steps, int(np.ceil(span.end)))):
                for sku in skus:
                    if sku == span.sku or torn:
                        series[sku][span.activity][k] = 0.9
                near = [b for b in video.boxes if b.sku == span.sku and abs(b.t - k) < 0.6]
                for label in LABELS:
                    boxes[label][k] = list(near[0].box) if near else boxes[label][k]
        for sku in skus:
            series[sku]["fps"] = 1.0  # type: ignore[assignment]
        out.append(
            {
                "video_id": video.video_id,
                "basket": dict(video.basket),
                "spans": [(s.activity, s.sku, s.start, s.end) for s in video.spans],
                "steps": series,
                "boxes": boxes,
            }
        )
    return out


def test_a_session_read_with_pixels_against_the_scans(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # the dataset's own frame size: at the tests' smallest (96 x 72) a product is a few pixels
    config = replace(small_synth_config(), video=VideoConfig(width=192, height=144, fps=5))
    generate_dataset(data, videos=3, minutes=0.75, seed=5, config=config)
    dataset = read_dataset(data)
    right = _sessions(data, torn=False)
    assert any(step_moments(s["steps"]) for s in right)
    lines = score_sessions(right, dataset, [0.0])
    assert {line["reading"] for line in lines} == {
        "alone",
        "in-cart",
        "scans-explain",
        "scans-assign",
    }
    for line in lines:  # every move found and named: only the planted item is flagged
        assert line["sessions"] > 0
        assert line["recall"] == 1.0 and line["false_flags_per_session"] == 0.0
    lines = score_sessions(_sessions(data, torn=True), dataset, [0.0, 0.5])
    torn = {(x["weight"], x["reading"]): x for x in lines}
    # a model that cannot tell products apart names the first of them every time; the
    # pixels at its boxes name more of them right
    blind, seeing = torn[(0.0, "alone")], torn[(0.5, "alone")]
    assert seeing["recall"] > blind["recall"]
    assert seeing["false_flags_per_session"] < blind["false_flags_per_session"]
    # the torn model's moves, named by answers that tell the products apart: as if right
    named = score_sessions(_sessions(data, torn=True), dataset, [0.0], naming=right)
    for line in named:
        assert line["recall"] == 1.0 and line["false_flags_per_session"] == 0.0
    with pytest.raises(ValueError, match="no answers name the products of"):
        score_sessions(_sessions(data, torn=True), dataset, [0.0], naming=right[:1])
