"""The metrics against examples computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from model.evaluate.metrics import (
    QueryScore,
    age_bucket,
    box_iou,
    gt_viou,
    recall_at_kx,
    score_activity,
    score_object,
    score_time,
    summarize,
    tiou,
)


def test_recall_at_1x_counts_truth_among_the_x_best() -> None:
    scores = [0.9, 0.1, 0.8, 0.3, 0.2]
    assert recall_at_kx(scores, [0], 1) == 1.0  # best is class 0
    assert recall_at_kx(scores, [3], 1) == 0.0
    assert recall_at_kx(scores, [0, 3], 1) == 0.5  # top 2 = {0, 2}
    assert recall_at_kx(scores, [0, 2], 1) == 1.0


def test_recall_at_3x_looks_three_times_deeper() -> None:
    scores = [0.9, 0.1, 0.8, 0.3, 0.2]
    assert recall_at_kx(scores, [3], 3) == 1.0  # top 3 = {0, 2, 3}
    assert recall_at_kx(scores, [1], 3) == 0.0
    assert recall_at_kx(scores, [1, 4], 3) == 1.0  # top 6 covers all 5 classes


def test_recall_ties_go_to_the_lower_class() -> None:
    assert recall_at_kx([0.5, 0.5, 0.5], [0], 1) == 1.0
    assert recall_at_kx([0.5, 0.5, 0.5], [2], 1) == 0.0


def test_recall_of_a_negative_query_is_undefined() -> None:
    with pytest.raises(ValueError):
        recall_at_kx([0.1, 0.2], [], 1)
    assert score_activity("q", "short", [0.1, 0.2], []).values == {}


def test_box_iou_by_hand() -> None:
    a = (0.5, 0.5, 0.2, 0.2)  # [0.4, 0.6]^2, area 0.04
    assert box_iou(a, a) == pytest.approx(1.0)
    b = (0.6, 0.5, 0.2, 0.2)  # shifted by half its width: inter 0.1 * 0.2 = 0.02
    assert box_iou(a, b) == pytest.approx(0.02 / (0.04 + 0.04 - 0.02))
    assert box_iou(a, (0.9, 0.9, 0.1, 0.1)) == 0.0  # disjoint
    assert box_iou(a, (0.5, 0.5, 1.0, 1.0)) == pytest.approx(0.04)  # the whole frame
    assert box_iou(a, (0.5, 0.5, 0.0, 0.0)) == 0.0  # no area


def test_gt_viou_is_the_mean_over_annotated_frames() -> None:
    truth = np.array([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]])
    predicted = np.array([[0.5, 0.5, 0.2, 0.2], [0.9, 0.9, 0.1, 0.1]])
    assert gt_viou(predicted, truth) == pytest.approx(0.5)
    assert score_object("q", "short", predicted, truth).values == {"gt-vIoU>0.3": 1.0}
    assert score_object("q", "short", predicted[::-1][:1], truth[:1]).values == {"gt-vIoU>0.3": 0.0}
    with pytest.raises(ValueError):
        gt_viou(predicted[:1], truth)


def test_tiou_edge_cases() -> None:
    assert tiou((2.0, 6.0), (2.0, 6.0)) == 1.0
    assert tiou((2.0, 6.0), (4.0, 8.0)) == pytest.approx(2.0 / 6.0)
    assert tiou((0.0, 2.0), (2.0, 4.0)) == 0.0  # touching half-open intervals do not overlap
    assert tiou((0.0, 10.0), (3.0, 5.0)) == pytest.approx(0.2)  # inside: |gt| / |pred|
    assert tiou((3.0, 3.0), (3.0, 3.0)) == 0.0  # both empty
    # exactly 0.3 is not above the threshold
    assert score_time("q", "long", (0.0, 10.0), (0.0, 3.0)).values == {"tIoU>0.3": 0.0}
    assert score_time("q", "long", (0.0, 10.0), (0.0, 3.1)).values == {"tIoU>0.3": 1.0}


def test_summarize_averages_per_bucket_and_overall() -> None:
    scores = [
        QueryScore("a", "activity", "short", {"recall@1x": 1.0, "recall@3x": 1.0}),
        QueryScore("b", "activity", "short", {"recall@1x": 0.0, "recall@3x": 1.0}),
        QueryScore("c", "activity", "long", {"recall@1x": 0.5, "recall@3x": 1.0}),
        QueryScore("d", "activity", "medium", {}),  # a negative: not counted
        QueryScore("e", "time", "medium", {"tIoU>0.3": 1.0}),
    ]
    summary = summarize(scores)
    assert summary.percent["recall@1x"] == {
        "short": 50.0,
        "medium": None,
        "long": 50.0,
        "all": 50.0,
    }
    assert summary.counts["recall@1x"] == {"short": 2, "medium": 0, "long": 1, "all": 3}
    assert summary.percent["tIoU>0.3"]["all"] == 100.0
    assert summary.percent["gt-vIoU>0.3"]["all"] is None


def test_age_buckets_by_seconds_before_the_end() -> None:
    assert [age_bucket(s) for s in (0.0, 29.9, 30.0, 89.0, 90.0, 149.9, 150.0, 600.0)] == [
        "0-30s", "0-30s", "30-90s", "30-90s", "90-150s", "90-150s", "150s+", "150s+",
    ]  # fmt: skip
