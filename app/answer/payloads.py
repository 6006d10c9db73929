"""Predictions as the JSON checkout services read from ``answers.payload``."""

from __future__ import annotations

from typing import Any

from app.answer.requests import Request
from model import ActivityPrediction, ObjectPrediction, TimePrediction

PRESENT = 0.5  # an activity counts as present at this probability


def payload(
    request: Request,
    predictions: list[Any],
    *,
    fps: float,
    labels: tuple[str, ...],
    names: dict[str, str],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": request.claimed.kind,
        "window": {"from": request.start_step / fps, "to": request.end_step / fps},
        "window_clipped": request.clipped,
        "session_open": request.session.status == "open",
        "frames_seen": request.session.frames_seen,
    }
    if request.ranked_skus:  # which product
        assert request.activity is not None
        column = labels.index(request.activity)
        ranking = sorted(
            (
                (sku, float(p.probabilities[column]))
                for sku, p in zip(request.ranked_skus, predictions, strict=True)
            ),
            key=lambda item: (-item[1], item[0]),
        )
        top = int(request.claimed.params.get("top", 5))
        out["activity"] = request.activity
        out["products"] = [
            {"sku": s, "name": names.get(s, s), "score": round(v, 6)} for s, v in ranking[:top]
        ]
        return out
    (prediction,) = predictions
    if isinstance(prediction, ActivityPrediction):
        scores = {
            label: round(float(p), 6)
            for label, p in zip(labels, prediction.probabilities, strict=True)
        }
        out["sku"] = request.claimed.params.get("sku")
        out["scores"] = scores
        out["present"] = [label for label, p in scores.items() if p >= PRESENT]
        if request.claimed.params.get("steps") and prediction.steps is not None:
            # per step of the window (step i at ``window.from + i / fps``): when it happened
            out["steps"] = {
                "fps": fps,
                **{
                    label: [round(float(p), 4) for p in prediction.steps[:, k]]
                    for k, label in enumerate(labels)
                },
            }
    elif isinstance(prediction, ObjectPrediction):
        out["activity"] = request.activity
        out["boxes"] = [
            {"t": (request.start_step + i) / fps, "box": [round(float(v), 5) for v in box]}
            for i, box in enumerate(prediction.boxes)
        ]
    elif isinstance(prediction, TimePrediction):
        out["activity"] = request.activity
        out["sku"] = request.claimed.params.get("sku")
        out["start"] = prediction.start / fps
        out["end"] = prediction.end / fps
        out["score"] = round(float(prediction.score), 6)
    return out
