"""ReST-style queries built from a video's spans and boxes.

Works on any ``VideoAnnotation``, synthetic or converted from real labels. Rules that keep
every answer unambiguous:

- A window ``[start, end)`` never cuts a span: each span is either fully inside or fully
  outside, and "in the window" means fully inside.
- Window edges lie on the annotation grid (multiples of 1 / box_fps seconds) or on span
  edges.
- An object query's window holds exactly one instance of its activity, a time query's
  window exactly one instance of its (activity, product) pair.
- A query's bucket is decided by its final window length (``QueryConfig.bucket_of``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from model.synth.config import ACTIVITIES, BUCKETS, QUERY_KINDS, QueryConfig
from model.synth.records import (
    ActivityQueryRecord,
    ObjectQueryRecord,
    QueryRecord,
    Span,
    TimeQueryRecord,
    VideoAnnotation,
)

_EPS = 1e-6
_ATTEMPTS_PER_QUERY = 8


def make_queries(
    annotation: VideoAnnotation,
    skus: Sequence[str],
    rng: np.random.Generator,
    config: QueryConfig,
) -> list[QueryRecord]:
    """Up to ``config.per_bucket`` queries of each kind and bucket for one video.

    ``skus`` is the catalog, where negative activity queries draw untouched products from.
    """
    timeline = _Timeline(annotation)
    makers: dict[str, Callable[[str, float], QueryRecord | None]] = {
        "activity": lambda b, length: _activity_query(timeline, skus, rng, config, b, length),
        "object": lambda b, length: _object_query(
            timeline, rng, b, length, exclusive=("activity",)
        ),
        "time": lambda b, length: _object_query(
            timeline, rng, b, length, exclusive=("activity", "sku")
        ),
    }
    queries: list[QueryRecord] = []
    seen: set[tuple] = set()
    for kind in QUERY_KINDS:
        count = 0
        for bucket in BUCKETS:
            made = 0
            for _ in range(config.per_bucket * _ATTEMPTS_PER_QUERY):
                if made == config.per_bucket or not timeline.spans:
                    break
                length = _window_length(rng, config, bucket, timeline.duration)
                if length is None:
                    break
                query = makers[kind](bucket, length)
                if query is None or config.bucket_of(query.end - query.start) != bucket:
                    continue
                key = (kind, tuple(sorted(query.given().items())), query.start, query.end)
                if key in seen:
                    continue
                seen.add(key)
                queries.append(_with_id(query, f"{annotation.video_id}-{kind[0]}{count:03d}"))
                count += 1
                made += 1
    return queries


class _Timeline:
    """Spans of one video with helpers to place windows that cut none of them."""

    def __init__(self, annotation: VideoAnnotation) -> None:
        self.video_id = annotation.video_id
        self.tick = 1.0 / annotation.box_fps
        self.duration = annotation.duration
        self.spans = sorted(annotation.spans, key=lambda s: (s.start, s.end))
        self.boxes = annotation.boxes
        # Interiors of overlapping spans merged: a window edge may not fall strictly inside.
        self.blocks: list[tuple[float, float]] = []
        for span in self.spans:
            if self.blocks and span.start < self.blocks[-1][1] - _EPS:
                self.blocks[-1] = (self.blocks[-1][0], max(self.blocks[-1][1], span.end))
            else:
                self.blocks.append((span.start, span.end))

    def snap_down(self, t: float) -> float:
        """The latest allowed window edge at or before ``t``."""
        t = min(max(0.0, t), self.duration)
        grid = math.floor(t / self.tick + _EPS) * self.tick
        for start, end in self.blocks:
            if start + _EPS < t < end - _EPS:
                return start
            if grid + _EPS < end <= t + _EPS:  # the grid point fell into a span: use its end
                grid = end
        return round(grid, 6)

    def snap_up(self, t: float) -> float:
        """The earliest allowed window edge at or after ``t``."""
        t = min(max(0.0, t), self.duration)
        grid = min(math.ceil(t / self.tick - _EPS) * self.tick, self.duration)
        for start, end in reversed(self.blocks):
            if start + _EPS < t < end - _EPS:
                return end
            if t - _EPS <= start < grid - _EPS:
                grid = start
        return round(grid, 6)

    def cuts(self, t: float) -> bool:
        return any(s + _EPS < t < e - _EPS for s, e in self.blocks)

    def inside(self, a: float, b: float) -> list[Span]:
        return [s for s in self.spans if s.start >= a - _EPS and s.end <= b + _EPS]

    def overlapping(self, a: float, b: float) -> list[Span]:
        return [s for s in self.spans if s.start < b - _EPS and s.end > a + _EPS]

    def window_around(
        self, rng: np.random.Generator, span: Span, length: float, lo: float, hi: float
    ) -> tuple[float, float] | None:
        """A window of about ``length`` holding ``span``, inside ``[lo, hi]``, cutting nothing."""
        first = max(lo, span.end - length)
        last = min(span.start, hi - length)
        if first > last + _EPS:
            return None
        a = self.snap_down(float(rng.uniform(first, last)) if last > first else first)
        if a < lo - _EPS:
            a = self.snap_up(lo)
        b = self.snap_up(max(a + length, span.end))
        if b > hi + _EPS:
            b = self.snap_down(hi)
        if a > span.start + _EPS or b < span.end - _EPS or self.cuts(a) or self.cuts(b):
            return None
        return a, b


def _window_length(
    rng: np.random.Generator, config: QueryConfig, bucket: str, duration: float
) -> float | None:
    low, high = config.bucket_range(bucket)
    high = min(high, duration)
    if low > high:
        return None
    if bucket == BUCKETS[-1] and rng.random() < 0.3:
        return duration  # the whole video
    return float(rng.uniform(low, high))


def _activity_query(
    timeline: _Timeline,
    skus: Sequence[str],
    rng: np.random.Generator,
    config: QueryConfig,
    bucket: str,
    length: float,
) -> ActivityQueryRecord | None:
    """Which activities happened to a product in a window (empty: a negative query)."""
    activities: tuple[str, ...]
    if rng.random() < config.negative_fraction:
        a = timeline.snap_down(float(rng.uniform(0.0, max(0.0, timeline.duration - length))))
        b = timeline.snap_up(a + length)
        touched = {s.sku for s in timeline.overlapping(a, b)}
        in_video = sorted({s.sku for s in timeline.spans} - touched)
        pool = in_video if in_video and rng.random() < 0.5 else sorted(set(skus) - touched)
        if not pool:
            return None
        sku, activities = pool[int(rng.integers(len(pool)))], ()
    else:
        anchor = timeline.spans[int(rng.integers(len(timeline.spans)))]
        window = timeline.window_around(rng, anchor, length, 0.0, timeline.duration)
        if window is None:
            return None
        a, b = window
        sku = anchor.sku
        done = {s.activity for s in timeline.inside(a, b) if s.sku == sku}
        activities = tuple(x for x in ACTIVITIES if x in done) + tuple(
            sorted(done - set(ACTIVITIES))
        )
    return ActivityQueryRecord("", timeline.video_id, bucket, a, b, sku, activities)


def _object_query(
    timeline: _Timeline,
    rng: np.random.Generator,
    bucket: str,
    length: float,
    exclusive: tuple[str, ...],
) -> ObjectQueryRecord | TimeQueryRecord | None:
    """A window around one instance with no other instance sharing the ``exclusive`` fields.

    ``exclusive=("activity",)`` makes an object query, ``("activity", "sku")`` a time query.
    """
    anchor = timeline.spans[int(rng.integers(len(timeline.spans)))]
    key = [getattr(anchor, f) for f in exclusive]
    others = [
        s for s in timeline.spans if s is not anchor and [getattr(s, f) for f in exclusive] == key
    ]
    if any(s.start < anchor.end and s.end > anchor.start for s in others):
        return None  # overlapping instances: no window can single one out
    lo = max([s.end for s in others if s.end <= anchor.start + _EPS], default=0.0)
    hi = min([s.start for s in others if s.start >= anchor.end - _EPS], default=timeline.duration)
    window = timeline.window_around(rng, anchor, length, lo, hi)
    if window is None:
        return None
    a, b = window
    if len(exclusive) == 2:
        return TimeQueryRecord(
            "",
            timeline.video_id,
            bucket,
            a,
            b,
            anchor.activity,
            anchor.sku,
            anchor.start,
            anchor.end,
        )
    boxes = tuple(
        (box.t, box.box)
        for box in timeline.boxes
        if box.activity == anchor.activity
        and box.sku == anchor.sku
        and anchor.start - _EPS <= box.t < anchor.end - _EPS
    )
    return ObjectQueryRecord(
        "",
        timeline.video_id,
        bucket,
        a,
        b,
        anchor.activity,
        anchor.sku,
        anchor.start,
        anchor.end,
        boxes,
    )


def _with_id(query: QueryRecord, query_id: str) -> QueryRecord:
    return replace(query, query_id=query_id)
