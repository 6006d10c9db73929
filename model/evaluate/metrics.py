"""The paper's metrics as pure functions (Sec. 4, "Evaluation metrics").

- activity: recall@kx, the fraction of ground-truth labels found among the top ``k * x``
  predictions, ``x`` being the number of ground-truth labels of the query (ReST);
- object: gt-vIoU, the mean IoU over the ground-truth annotated frames (TubeDETR's
  vIoU when the window is given); a query counts as correct when it exceeds 0.3;
- time: tIoU of ``[start, end)`` intervals; correct when it exceeds 0.3.

``summarize`` averages per-query values per window bucket (short / medium / long) and
over all of them; ``age_bucket`` names the other grouping evaluation reports, by how long
before the end of the video the window closed (what a memory has to reach back for).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: Threshold of a correct object / time answer (paper: R = 0.3, after TubeDETR).
IOU_THRESHOLD = 0.3

#: The activity score at which an answer calls an activity present (the worker's and
#: reconciliation's threshold).
PRESENT = 0.5

#: Metric names in report order, with the query kind each one is about.
METRICS: tuple[tuple[str, str], ...] = (
    ("recall@1x", "activity"),
    ("recall@3x", "activity"),
    ("swap-reject", "activity"),
    ("gt-vIoU>0.3", "object"),
    ("tIoU>0.3", "time"),
)


def recall_at_kx(scores: Sequence[float] | np.ndarray, truth: Collection[int], k: int) -> float:
    """Fraction of the ``truth`` classes among the ``k * len(truth)`` best-scored ones.

    Ties go to the lower class index (a stable sort), so the result is deterministic.
    Undefined for an empty ``truth`` (a negative query): raises ``ValueError``; callers
    skip negatives, as the paper does.
    """
    if not truth:
        raise ValueError("recall@kx needs at least one ground-truth label.")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    top = set(order[: k * len(truth)].tolist())
    return len(top & set(truth)) / len(truth)


def box_iou(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """IoU of two normalized ``(cx, cy, w, h)`` boxes; 0 when either has no area."""
    ax0, ay0, ax1, ay1 = _corners(a)
    bx0, by0, bx1, by1 = _corners(b)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def gt_viou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean IoU over ground-truth frames: ``predicted[i]`` is the answer for ``truth[i]``.

    Args:
        predicted: ``(F, 4)`` boxes, one per annotated frame.
        truth: ``(F, 4)`` the annotated boxes (``F >= 1``).
    """
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if len(truth) == 0 or predicted.shape != truth.shape:
        raise ValueError("gt-vIoU needs one predicted box per annotated frame (at least one).")
    return float(np.mean([box_iou(p, t) for p, t in zip(predicted, truth, strict=True)]))


def tiou(predicted: tuple[float, float], truth: tuple[float, float]) -> float:
    """Temporal IoU of half-open intervals ``[start, end)``; 0 when both are empty."""
    (ps, pe), (ts, te) = predicted, truth
    inter = max(0.0, min(pe, te) - max(ps, ts))
    union = max(0.0, pe - ps) + max(0.0, te - ts) - inter
    return inter / union if union > 0 else 0.0


#: Groups by the seconds between a query window's end and the video's end.
AGE_BUCKETS: tuple[str, ...] = ("0-30s", "30-90s", "90-150s", "150s+")
_AGE_EDGES = (30.0, 90.0, 150.0)


def age_bucket(seconds_before_end: float) -> str:
    """The ``AGE_BUCKETS`` name of a window that closed this long before the video's end."""
    for edge, name in zip(_AGE_EDGES, AGE_BUCKETS, strict=False):
        if seconds_before_end < edge:
            return name
    return AGE_BUCKETS[-1]


@dataclass(frozen=True)
class QueryScore:
    """One query's values of the metrics that apply to it (``METRICS`` names, in [0, 1])."""

    query_id: str
    kind: str
    bucket: str
    values: dict[str, float] = field(default_factory=dict)


def score_activity(
    query_id: str,
    bucket: str,
    scores: Sequence[float] | np.ndarray,
    truth: Collection[int],
    twin: bool = False,
) -> QueryScore:
    """Recall@1x and @3x; a negative query (no truth) counts for neither.

    A swapped-product ``twin`` (``model.data.swapped``: a product nobody touched, over a
    window where another was handled) scores ``swap-reject``: 1 when no activity reaches
    ``PRESENT``, the score at which an answer calls an activity present.
    """
    values = {}
    if twin:
        values = {"swap-reject": float(np.max(scores) < PRESENT)}
    elif truth:
        values = {
            "recall@1x": recall_at_kx(scores, truth, 1),
            "recall@3x": recall_at_kx(scores, truth, 3),
        }
    return QueryScore(query_id, "activity", bucket, values)


def score_object(
    query_id: str, bucket: str, predicted: np.ndarray, truth: np.ndarray
) -> QueryScore:
    return QueryScore(
        query_id,
        "object",
        bucket,
        {"gt-vIoU>0.3": float(gt_viou(predicted, truth) > IOU_THRESHOLD)},
    )


def score_time(
    query_id: str, bucket: str, predicted: tuple[float, float], truth: tuple[float, float]
) -> QueryScore:
    return QueryScore(
        query_id, "time", bucket, {"tIoU>0.3": float(tiou(predicted, truth) > IOU_THRESHOLD)}
    )


@dataclass(frozen=True)
class Summary:
    """Per metric and bucket (plus ``all``): the mean in percent and the number of queries."""

    percent: dict[str, dict[str, float | None]]
    counts: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Mapping[str, Mapping[str, float | int | None]]]:
        return {"percent": self.percent, "counts": self.counts}


def summarize(
    scores: Iterable[QueryScore], buckets: Sequence[str] = ("short", "medium", "long")
) -> Summary:
    """Mean of each metric per bucket and overall, in percent (None where no query counts)."""
    groups: dict[str, dict[str, list[float]]] = {
        name: {b: [] for b in (*buckets, "all")} for name, _ in METRICS
    }
    for score in scores:
        for name, value in score.values.items():
            groups[name].setdefault(score.bucket, []).append(value)
            groups[name]["all"].append(value)
    percent = {
        name: {b: (100.0 * float(np.mean(v)) if v else None) for b, v in by_bucket.items()}
        for name, by_bucket in groups.items()
    }
    counts = {name: {b: len(v) for b, v in by_bucket.items()} for name, by_bucket in groups.items()}
    return Summary(percent, counts)


def _corners(box: Sequence[float] | np.ndarray) -> tuple[float, float, float, float]:
    cx, cy, w, h = (float(v) for v in box)
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
