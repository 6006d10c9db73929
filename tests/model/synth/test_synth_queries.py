"""ReST-style queries: every answer recomputed from the spans and boxes of its video."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from model.synth import (
    ACTIVITIES,
    BUCKETS,
    QUERY_KINDS,
    ActivityQueryRecord,
    BoxRecord,
    ObjectQueryRecord,
    QueryConfig,
    Span,
    TimeQueryRecord,
    VideoAnnotation,
    make_queries,
)

EPS = 1e-6


def _all_queries(synth_data):
    return [q for split in synth_data.dataset.queries.values() for q in split]


def _inside(spans, start: float, end: float) -> list[Span]:
    return [s for s in spans if s.start >= start - EPS and s.end <= end + EPS]


def _overlapping(spans, start: float, end: float) -> list[Span]:
    return [s for s in spans if s.start < end - EPS and s.end > start + EPS]


def test_every_kind_and_bucket_is_present(synth_data) -> None:
    counts = Counter((q.kind, q.bucket) for q in _all_queries(synth_data))
    assert set(counts) == {(k, b) for k in QUERY_KINDS for b in BUCKETS}
    ids = [q.query_id for q in _all_queries(synth_data)]
    assert len(ids) == len(set(ids))


def test_windows_are_in_their_bucket_and_cut_no_span(synth_data) -> None:
    config = synth_data.config.queries
    for query in _all_queries(synth_data):
        video = synth_data.dataset.videos[query.video_id]
        assert 0.0 <= query.start < query.end <= video.duration + EPS
        low, high = config.bucket_range(query.bucket)
        assert low - EPS <= query.end - query.start <= high + EPS
        for span in video.spans:
            for edge in (query.start, query.end):
                assert not span.start + EPS < edge < span.end - EPS, (query.query_id, span)


def test_activity_answers_are_the_products_activities_in_the_window(synth_data) -> None:
    negatives = 0
    for query in _all_queries(synth_data):
        if not isinstance(query, ActivityQueryRecord):
            continue
        spans = synth_data.dataset.videos[query.video_id].spans
        expected = {
            s.activity for s in _inside(spans, query.start, query.end) if s.sku == query.sku
        }
        assert set(query.activities) == expected, query.query_id
        assert list(query.activities) == [a for a in ACTIVITIES if a in expected]  # label order
        if not expected:
            negatives += 1
            assert not [
                s for s in _overlapping(spans, query.start, query.end) if s.sku == query.sku
            ]
    assert negatives > 0


def test_object_answers_are_the_single_instance_and_its_boxes(synth_data) -> None:
    for query in _all_queries(synth_data):
        if not isinstance(query, ObjectQueryRecord):
            continue
        video = synth_data.dataset.videos[query.video_id]
        same = [
            s
            for s in _overlapping(video.spans, query.start, query.end)
            if s.activity == query.activity
        ]
        assert len(same) == 1, query.query_id
        (span,) = same
        assert (span.sku, span.start, span.end) == (query.sku, query.answer_start, query.answer_end)
        expected = [(b.t, b.box) for b in video.boxes if span.start <= b.t < span.end]
        assert list(query.boxes) == expected
        steps = round((span.end - span.start) * video.box_fps)
        assert len(query.boxes) == steps  # one box per 1 / box_fps step of the instance


def test_time_answers_are_the_single_instance(synth_data) -> None:
    for query in _all_queries(synth_data):
        if not isinstance(query, TimeQueryRecord):
            continue
        spans = synth_data.dataset.videos[query.video_id].spans
        same = [
            s
            for s in _overlapping(spans, query.start, query.end)
            if (s.activity, s.sku) == (query.activity, query.sku)
        ]
        assert len(same) == 1, query.query_id
        assert (same[0].start, same[0].end) == (query.answer_start, query.answer_end)
        assert query.start <= query.answer_start < query.answer_end <= query.end


def test_queries_from_unaligned_real_style_annotations() -> None:
    """Converted real labels need not sit on the 0.2 s grid; windows still cut no span."""
    spans = (
        Span("take_from_shelf", "A", 1.23, 3.51),
        Span("put_in_cart", "A", 3.51, 5.07),
        Span("take_from_shelf", "B", 9.9, 12.43),
        Span("inspect", "B", 12.43, 17.0),
        Span("return_to_shelf", "B", 17.0, 19.33),
        Span("take_out_of_cart", "A", 30.11, 32.0),
    )
    boxes = tuple(
        BoxRecord(t / 5, s.activity, s.sku, (0.5, 0.5, 0.2, 0.3))
        for s in spans
        for t in range(int(np.ceil(s.start * 5)), int(np.ceil(s.end * 5)))
    )
    annotation = VideoAnnotation(
        "real-1", "train", "videos/real-1.mp4", 640, 480, 30.0, 1200, 40.0, 5.0, spans, boxes, {}
    )
    config = QueryConfig(
        per_bucket=5, short_seconds=(4, 12), medium_seconds=(12, 25), long_seconds=(25, 40)
    )
    queries = make_queries(annotation, ["A", "B", "C"], np.random.default_rng(0), config)
    assert {q.kind for q in queries} == set(QUERY_KINDS)
    for query in queries:
        for span in spans:
            assert not span.start + EPS < query.start < span.end - EPS
            assert not span.start + EPS < query.end < span.end - EPS
        if isinstance(query, ObjectQueryRecord):
            assert query.boxes and all(
                query.answer_start <= t < query.answer_end for t, _ in query.boxes
            )


def test_same_rng_same_queries_other_rng_other_windows(synth_data) -> None:
    video = synth_data.dataset.videos["train-0000"]
    skus = [c.sku for c in synth_data.dataset.catalog]
    config = synth_data.config.queries

    def make(seed: int):
        return make_queries(video, skus, np.random.default_rng(seed), config)

    assert make(1) == make(1)
    assert [(q.start, q.end) for q in make(1)] != [(q.start, q.end) for q in make(2)]


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [(3.0, None), (8.0, "short"), (30.0, "short"), (30.2, "medium"), (121.0, "long")],
)
def test_bucket_of(seconds: float, bucket: str | None) -> None:
    assert QueryConfig().bucket_of(seconds) == bucket
