"""The dataset format's records as typed dataclasses, with their JSON forms.

This module is the format: the generator writes these records, ``read_dataset`` reads
them, and ``docs/DATASET.md`` describes the same keys. Times are seconds from the start
of the video (floats), windows and spans are half-open ``[start, end)``, boxes are
normalized ``(cx, cy, w, h)`` in ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from model.synth.errors import DatasetError

BoxCoords = tuple[float, float, float, float]  # cx, cy, w, h, normalized


@dataclass(frozen=True)
class CatalogEntry:
    sku: str
    name: str
    price: float | None
    image: str  # reference image, relative to the dataset root

    def to_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "name": self.name, "price": self.price, "image": self.image}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CatalogEntry:
        return cls(sku=d["sku"], name=d["name"], price=d.get("price"), image=d["image"])


@dataclass(frozen=True)
class StoreRecord:
    """One store of a multi-store dataset: its id, the split all its videos are in, and
    the SKUs of its catalog (``dataset.json`` ``stores``)."""

    store: str
    split: str | None  # None: the store's videos may be in any split
    skus: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "split": self.split, "skus": list(self.skus)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StoreRecord:
        return cls(store=str(d["store"]), split=d.get("split"), skus=tuple(d["skus"]))


@dataclass(frozen=True)
class Span:
    """One activity on one product during ``[start, end)`` seconds."""

    activity: str
    sku: str
    start: float
    end: float

    def to_json(self) -> dict[str, Any]:
        return {"activity": self.activity, "sku": self.sku, "start": self.start, "end": self.end}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Span:
        return cls(d["activity"], d["sku"], float(d["start"]), float(d["end"]))


@dataclass(frozen=True)
class BoxRecord:
    """The handled product's box at time ``t`` (a multiple of 1 / box_fps) during an activity."""

    t: float
    activity: str
    sku: str
    box: BoxCoords

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "activity": self.activity, "sku": self.sku, "box": list(self.box)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BoxRecord:
        return cls(float(d["t"]), d["activity"], d["sku"], _box(d["box"]))


@dataclass(frozen=True)
class Event:
    """A distractor (``passerby``, ``passing_product``, ``occluder``, ``flicker``,
    ``empty_reach``): informational, never a query answer."""

    kind: str
    start: float
    end: float

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Event:
        return cls(d["kind"], float(d["start"]), float(d["end"]))


@dataclass(frozen=True)
class VideoAnnotation:
    """Everything known about one video: ``annotations/<video_id>.json``."""

    video_id: str
    split: str
    video: str  # path of the MP4, relative to the dataset root
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    box_fps: float
    spans: tuple[Span, ...]
    boxes: tuple[BoxRecord, ...]
    basket: dict[str, int]  # SKU -> items in the cart at the end (put in minus taken out)
    events: tuple[Event, ...] = ()
    seed: int | None = None  # the generator's per-video seed; None for real videos
    generator: str | None = None
    store: str | None = None  # the store it was shot in; None in a single-store dataset

    def to_json(self) -> dict[str, Any]:
        # A single-store annotation has no "store" key: its files are those of version 1.
        where = {} if self.store is None else {"store": self.store}
        return {
            "video_id": self.video_id,
            "split": self.split,
            **where,
            "video": self.video,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "num_frames": self.num_frames,
            "duration": self.duration,
            "box_fps": self.box_fps,
            "seed": self.seed,
            "generator": self.generator,
            "basket": dict(sorted(self.basket.items())),
            "spans": [s.to_json() for s in self.spans],
            "boxes": [b.to_json() for b in self.boxes],
            "events": [e.to_json() for e in self.events],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VideoAnnotation:
        return cls(
            video_id=d["video_id"],
            split=d["split"],
            video=d["video"],
            width=int(d["width"]),
            height=int(d["height"]),
            fps=float(d["fps"]),
            num_frames=int(d["num_frames"]),
            duration=float(d["duration"]),
            box_fps=float(d["box_fps"]),
            spans=tuple(Span.from_json(s) for s in d["spans"]),
            boxes=tuple(BoxRecord.from_json(b) for b in d["boxes"]),
            basket={k: int(v) for k, v in d.get("basket", {}).items()},
            events=tuple(Event.from_json(e) for e in d.get("events", [])),
            seed=d.get("seed"),
            generator=d.get("generator"),
            store=d.get("store"),
        )


# ---------------------------------------------------------------------- queries
@dataclass(frozen=True)
class ActivityQueryRecord:
    """Given a product and a window: which activities were done with it (multi-label)."""

    kind: ClassVar[str] = "activity"
    query_id: str
    video_id: str
    bucket: str
    start: float
    end: float
    sku: str
    activities: tuple[str, ...]  # empty: nothing was done with the product in the window

    def given(self) -> dict[str, Any]:
        return {"sku": self.sku}

    def answer(self) -> dict[str, Any]:
        return {"activities": list(self.activities)}


@dataclass(frozen=True)
class ObjectQueryRecord:
    """Given an activity and a window holding exactly one instance of it: which product,
    where (a box per 1 / box_fps step of the instance) and when."""

    kind: ClassVar[str] = "object"
    query_id: str
    video_id: str
    bucket: str
    start: float
    end: float
    activity: str
    sku: str
    answer_start: float
    answer_end: float
    boxes: tuple[tuple[float, BoxCoords], ...]  # (t, (cx, cy, w, h)) per step

    def given(self) -> dict[str, Any]:
        return {"activity": self.activity}

    def answer(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "start": self.answer_start,
            "end": self.answer_end,
            "boxes": [[t, *box] for t, box in self.boxes],
        }


@dataclass(frozen=True)
class TimeQueryRecord:
    """Given an activity, a product and a window holding one instance: when it happened."""

    kind: ClassVar[str] = "time"
    query_id: str
    video_id: str
    bucket: str
    start: float
    end: float
    activity: str
    sku: str
    answer_start: float
    answer_end: float

    def given(self) -> dict[str, Any]:
        return {"activity": self.activity, "sku": self.sku}

    def answer(self) -> dict[str, Any]:
        return {"start": self.answer_start, "end": self.answer_end}


QueryRecord = ActivityQueryRecord | ObjectQueryRecord | TimeQueryRecord


def query_to_json(query: QueryRecord) -> dict[str, Any]:
    """One line of ``queries/<split>.jsonl``."""
    return {
        "query_id": query.query_id,
        "video_id": query.video_id,
        "kind": query.kind,
        "bucket": query.bucket,
        "window": [query.start, query.end],
        "given": query.given(),
        "answer": query.answer(),
    }


def query_from_json(d: dict[str, Any]) -> QueryRecord:
    try:
        common = {
            "query_id": d["query_id"],
            "video_id": d["video_id"],
            "bucket": d["bucket"],
            "start": float(d["window"][0]),
            "end": float(d["window"][1]),
        }
        given, answer = d["given"], d["answer"]
        if d["kind"] == "activity":
            return ActivityQueryRecord(
                **common, sku=given["sku"], activities=tuple(answer["activities"])
            )
        if d["kind"] == "object":
            return ObjectQueryRecord(
                **common,
                activity=given["activity"],
                sku=answer["sku"],
                answer_start=float(answer["start"]),
                answer_end=float(answer["end"]),
                boxes=tuple((float(b[0]), _box(b[1:])) for b in answer["boxes"]),
            )
        if d["kind"] == "time":
            return TimeQueryRecord(
                **common,
                activity=given["activity"],
                sku=given["sku"],
                answer_start=float(answer["start"]),
                answer_end=float(answer["end"]),
            )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise DatasetError(f"Query {d.get('query_id', '?')} is malformed: {exc!r}.") from None
    raise DatasetError(f"Query {d.get('query_id', '?')} has unknown kind {d.get('kind')!r}.")


def _box(values: Any) -> BoxCoords:
    cx, cy, w, h = (float(v) for v in values)
    return (cx, cy, w, h)
