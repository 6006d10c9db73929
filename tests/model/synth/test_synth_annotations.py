"""Spans, boxes and baskets agree with each other and with what the renderer drew."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from model.synth import ACTIVITIES, VideoAnnotation
from model.synth.scene import SHELF_SHARE

HOLDING_STARTS = {"take_from_shelf", "take_out_of_cart"}
HOLDING_ENDS = {"put_in_cart", "return_to_shelf"}


def _videos(synth_data) -> list[VideoAnnotation]:
    return list(synth_data.dataset.videos.values())


def test_spans_are_well_formed_and_never_overlap(synth_data) -> None:
    seen = Counter()
    for video in _videos(synth_data):
        assert video.spans, video.video_id
        step = 1.0 / video.box_fps
        for span in video.spans:
            assert span.activity in ACTIVITIES
            assert 0.0 <= span.start < span.end <= video.duration
            assert 1.0 <= span.end - span.start <= 6.5  # a few seconds: several memory frames
            for t in (span.start, span.end):
                assert abs(t / step - round(t / step)) < 1e-6  # on the annotation grid
            seen[span.activity] += 1
        for a, b in zip(video.spans, video.spans[1:], strict=False):
            assert a.end <= b.start  # one hand: one activity at a time
    # The synth_data dataset's seed is picked so that the tests below see every activity.
    assert set(seen) == set(ACTIVITIES)


def test_spans_follow_the_hand_and_the_basket_adds_up(synth_data) -> None:
    """Take starts holding, put/return ends it, inspect only while holding; basket = in - out."""
    for video in _videos(synth_data):
        held: str | None = None
        held_until = 0.0
        cart: Counter[str] = Counter()
        for span in video.spans:
            if span.activity in HOLDING_STARTS:
                assert held is None
                held = span.sku
                if span.activity == "take_out_of_cart":
                    assert cart[span.sku] > 0  # only what is in the cart comes out
                    cart[span.sku] -= 1
            else:
                assert held == span.sku and span.start == pytest.approx(held_until)
                if span.activity in HOLDING_ENDS:
                    held = None
                if span.activity == "put_in_cart":
                    cart[span.sku] += 1
            held_until = span.end
        assert held is None
        assert video.basket == {sku: n for sku, n in sorted(cart.items()) if n > 0}


def test_boxes_cover_exactly_the_activity_steps(synth_data) -> None:
    for video in _videos(synth_data):
        expected = {}
        for span in video.spans:
            k = round(span.start * video.box_fps)
            while k / video.box_fps < span.end - 1e-9:
                expected[round(k / video.box_fps, 3)] = (span.activity, span.sku)
                k += 1
        got = {b.t: (b.activity, b.sku) for b in video.boxes}
        assert len(got) == len(video.boxes)
        assert got == expected
        for box in video.boxes:
            cx, cy, w, h = box.box
            assert 0 < w <= 1 and 0 < h <= 1
            assert cx - w / 2 >= -1e-5 and cx + w / 2 <= 1 + 1e-5  # 5-decimal rounding
            assert cy - h / 2 >= -1e-5 and cy + h / 2 <= 1 + 1e-5


def test_boxes_enclose_the_pixels_of_the_handled_product(synth_data, worlds) -> None:
    """Render each boxed frame with and without the handled product: what changes is in the box.

    The box is tight too: the changed pixels fill it, except where the hand covers the
    product (taking from and putting into the cart, the arm crosses the product's bottom).
    """
    ious = []
    for video in _videos(synth_data):
        world = worlds[video.video_id]
        for box in video.boxes[::3]:
            frame = round(box.t * video.fps)
            with_product = world.renderer.render(frame).image
            without = world.renderer.render(frame, draw_handled=False).image
            ys, xs = np.nonzero(np.any(with_product != without, axis=2))
            assert len(xs) > 20, (video.video_id, box.t)
            x0, y0, x1, y1 = _pixels(box.box, video.width, video.height)
            assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
            ious.append(_iou((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), (x0, y0, x1, y1)))
    assert len(ious) > 30
    assert min(ious) > 0.4 and float(np.median(ious)) > 0.85


def test_put_in_cart_ends_low_and_return_to_shelf_ends_high(synth_data) -> None:
    """The cart band is the bottom of the frame; the two placements are visibly different."""
    ends = {"put_in_cart": [], "return_to_shelf": [], "take_from_shelf": []}
    for video in _videos(synth_data):
        for span in video.spans:
            if span.activity in ends:
                last = max(
                    (b for b in video.boxes if span.start <= b.t < span.end), key=lambda b: b.t
                )
                ends[span.activity].append(last.box)
    assert ends["put_in_cart"] and ends["return_to_shelf"]
    assert all(cy > SHELF_SHARE for _, cy, _, _ in ends["put_in_cart"])
    assert all(cy < SHELF_SHARE for _, cy, _, _ in ends["return_to_shelf"])
    # At the end of a take the product is held up close: at least a fifth of the frame.
    assert ends["take_from_shelf"] and all(h >= 0.2 for _, _, _, h in ends["take_from_shelf"])


def test_distractor_events_are_recorded_inside_the_video(synth_data) -> None:
    kinds = set()
    for video in _videos(synth_data):
        for event in video.events:
            assert 0 <= event.start < event.end <= video.duration
            kinds.add(event.kind)
    assert kinds <= {"passerby", "passing_product", "occluder", "flicker", "empty_reach"}
    assert len(kinds) >= 2


def _pixels(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, ...]:
    cx, cy, w, h = box
    return (
        round((cx - w / 2) * width),
        round((cy - h / 2) * height),
        round((cx + w / 2) * width),
        round((cy + h / 2) * height),
    )


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area
