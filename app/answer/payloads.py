"""Answers as the JSON checkout services read from ``answers.payload``: one typed class per
kind of answer, written by the query worker and read back by reconciliation and the CLI.

The JSON keys are the contract (docs/DESIGN.md); ``version`` says which layout a payload
has. Payloads stored before versioning (no ``version`` key) have layout 1's keys and read
as version 1. A reader meeting a newer version than it knows says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.errors import CartmemError

#: the key of a ``StepScores``' JSON under which a model pair's per-step answers that name
#: products sit beside the labels' (``model.pair``)
NAMING = "naming"

PAYLOAD_VERSION = 1
PRESENT = 0.5  # an activity counts as present at this probability


class PayloadError(CartmemError):
    """A stored answer this code cannot read (unknown layout or version)."""


@dataclass(frozen=True)
class Answering:
    """What every answer says about the question's window and how it was answered."""

    kind: str  # the query's kind: activity, object or time
    window_from: float  # seconds from session start
    window_to: float
    window_clipped: bool  # the window ran past the video recorded so far
    session_open: bool
    frames_seen: int
    model_version: str = ""
    batch_ms: float | None = None  # the model call's time for the whole batch
    batch_size: int | None = None
    queued_ms: float | None = None  # from enqueue to the answer's commit

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": PAYLOAD_VERSION,
            "kind": self.kind,
            "window": {"from": self.window_from, "to": self.window_to},
            "window_clipped": self.window_clipped,
            "session_open": self.session_open,
            "frames_seen": self.frames_seen,
        }
        for name in ("model_version", "batch_ms", "batch_size", "queued_ms"):
            value = getattr(self, name)
            if value not in (None, ""):
                out[name] = value
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Answering:
        return cls(
            kind=d["kind"],
            window_from=float(d["window"]["from"]),
            window_to=float(d["window"]["to"]),
            window_clipped=bool(d["window_clipped"]),
            session_open=bool(d["session_open"]),
            frames_seen=int(d["frames_seen"]),
            model_version=d.get("model_version", ""),
            batch_ms=d.get("batch_ms"),
            batch_size=d.get("batch_size"),
            queued_ms=d.get("queued_ms"),
        )


@dataclass(frozen=True)
class StepScores:
    """An activity answer per step of the window: step i is at ``window_from + i / fps``.
    ``naming``: where a model pair answered (``model.pair``), the same per step from both
    models together, which names a moved product more often (under ``"naming"`` in JSON)."""

    fps: float
    by_label: dict[str, list[float]]
    naming: dict[str, list[float]] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fps": self.fps, **self.by_label}
        if self.naming is not None:
            out[NAMING] = self.naming
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StepScores:
        labels = {k: list(v) for k, v in d.items() if k not in ("fps", NAMING)}
        naming = d.get(NAMING)
        return cls(
            float(d["fps"]),
            labels,
            None if naming is None else {k: list(v) for k, v in naming.items()},
        )


@dataclass(frozen=True)
class ActivityAnswer:
    """What was done with one product in the window: a probability per activity."""

    answering: Answering
    sku: str | None
    scores: dict[str, float]
    steps: StepScores | None = None

    @property
    def present(self) -> list[str]:
        return [label for label, p in self.scores.items() if p >= PRESENT]

    def to_json(self) -> dict[str, Any]:
        out = self.answering.to_json() | {
            "sku": self.sku,
            "scores": self.scores,
            "present": self.present,
        }
        if self.steps is not None:
            out["steps"] = self.steps.to_json()
        return out


@dataclass(frozen=True)
class RankedProduct:
    sku: str
    name: str
    score: float


@dataclass(frozen=True)
class ProductRanking:
    """Which product an activity was done with: the catalog's products, best first."""

    answering: Answering
    activity: str
    products: list[RankedProduct] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.answering.to_json() | {
            "activity": self.activity,
            "products": [{"sku": p.sku, "name": p.name, "score": p.score} for p in self.products],
        }


@dataclass(frozen=True)
class TimedBox:
    t: float  # seconds from session start
    box: list[float]  # normalised (cx, cy, w, h)


@dataclass(frozen=True)
class ObjectAnswer:
    """Which object the activity was done with: its box at every step of the window."""

    answering: Answering
    activity: str
    boxes: list[TimedBox] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.answering.to_json() | {
            "activity": self.activity,
            "boxes": [{"t": b.t, "box": b.box} for b in self.boxes],
        }


@dataclass(frozen=True)
class TimeAnswer:
    """When the activity was done with the product, in seconds from session start."""

    answering: Answering
    activity: str
    sku: str | None
    start: float
    end: float
    score: float

    def to_json(self) -> dict[str, Any]:
        return self.answering.to_json() | {
            "activity": self.activity,
            "sku": self.sku,
            "start": self.start,
            "end": self.end,
            "score": self.score,
        }


AnswerPayload = ActivityAnswer | ProductRanking | ObjectAnswer | TimeAnswer


def answer_from_json(d: dict[str, Any]) -> AnswerPayload:
    """The typed answer of a stored payload; ``PayloadError`` for one it cannot read."""
    if not isinstance(d, dict):
        raise PayloadError(f"answer payload is not a JSON object: {type(d).__name__}")
    version = d.get("version", 1)
    if not isinstance(version, int) or version > PAYLOAD_VERSION:
        raise PayloadError(
            f"answer payload version {version!r} is newer than this cartmem reads "
            f"(up to {PAYLOAD_VERSION}); upgrade the reader."
        )
    try:
        answering = Answering.from_json(d)
        if "products" in d:
            products = [
                RankedProduct(p["sku"], p["name"], float(p["score"])) for p in d["products"]
            ]
            return ProductRanking(answering, d["activity"], products)
        if "scores" in d:
            steps = StepScores.from_json(d["steps"]) if "steps" in d else None
            scores = {k: float(v) for k, v in d["scores"].items()}
            return ActivityAnswer(answering, d.get("sku"), scores, steps)
        if "boxes" in d:
            boxes = [TimedBox(float(b["t"]), [float(v) for v in b["box"]]) for b in d["boxes"]]
            return ObjectAnswer(answering, d["activity"], boxes)
        return TimeAnswer(
            answering,
            d["activity"],
            d.get("sku"),
            float(d["start"]),
            float(d["end"]),
            float(d["score"]),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"answer payload is not one cartmem wrote: {exc!r}") from None
