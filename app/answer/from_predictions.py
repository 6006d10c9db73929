"""A request's model predictions turned into the answer its checkout reads."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.answer.payloads import (
    ActivityAnswer,
    Answering,
    AnswerPayload,
    ObjectAnswer,
    ProductRanking,
    RankedProduct,
    StepScores,
    TimeAnswer,
    TimedBox,
)
from app.answer.requests import Request
from model import ActivityPrediction, ObjectPrediction, Prediction, TimePrediction

DEFAULT_TOP = 5  # products a "which product" answer lists unless the query says ``top``


def build_answer(
    request: Request,
    predictions: Sequence[Prediction],
    answering: Answering,
    *,
    fps: float,
    labels: tuple[str, ...],
    names: dict[str, str],
) -> AnswerPayload:
    """The answer to ``request`` from its predictions, one per model query, in order."""
    params = request.claimed.params
    if request.ranked_skus:  # which product: one activity prediction per candidate SKU
        assert request.activity is not None
        column = labels.index(request.activity)
        ranking = sorted(
            (
                (sku, _naming_score(p, column))
                for sku, p in zip(
                    request.ranked_skus, _all(predictions, ActivityPrediction), strict=True
                )
            ),
            key=lambda item: (-item[1], item[0]),
        )
        top = int(params.get("top", DEFAULT_TOP))
        products = [RankedProduct(s, names.get(s, s), round(v, 6)) for s, v in ranking[:top]]
        return ProductRanking(answering, request.activity, products)
    (prediction,) = predictions
    if isinstance(prediction, ActivityPrediction):
        scores = {
            label: round(float(p), 6)
            for label, p in zip(labels, prediction.probabilities, strict=True)
        }
        steps = None
        if params.get("steps") and prediction.steps is not None:
            naming = None if prediction.naming is None else _by_label(prediction.naming, labels)
            steps = StepScores(fps, _by_label(prediction.steps, labels), naming)
        return ActivityAnswer(answering, params.get("sku"), scores, steps)
    assert request.activity is not None
    if isinstance(prediction, ObjectPrediction):
        boxes = [
            TimedBox((request.start_step + i) / fps, [round(float(v), 5) for v in box])
            for i, box in enumerate(prediction.boxes)
        ]
        return ObjectAnswer(answering, request.activity, boxes)
    assert isinstance(prediction, TimePrediction)
    return TimeAnswer(
        answering,
        request.activity,
        params.get("sku"),
        prediction.start / fps,
        prediction.end / fps,
        round(float(prediction.score), 6),
    )


def _naming_score(prediction: ActivityPrediction, column: int) -> float:
    """How surely ``prediction``'s product had the activity in ``column`` in the window:
    one model's probability, or where a model pair answered, the highest step of both
    models' geometric mean, which ranks the handled product first more often (at 81.9 % of
    the puts of the validation stores' 20-minute trips, against 63.6 % for the lead alone;
    docs/RESULTS.md, "Two models' answers served")."""
    if prediction.naming is None:
        return float(prediction.probabilities[column])
    return float(prediction.naming[:, column].max())


def _by_label(steps: np.ndarray, labels: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-step answers ``(L, A)`` as JSON lists by activity label, to 4 decimals."""
    return {label: [round(float(p), 4) for p in steps[:, k]] for k, label in enumerate(labels)}


def _all(
    predictions: Sequence[Prediction], kind: type[ActivityPrediction]
) -> list[ActivityPrediction]:
    if not all(isinstance(p, kind) for p in predictions):
        raise TypeError(f"expected only {kind.__name__}s")
    return [p for p in predictions if isinstance(p, kind)]
