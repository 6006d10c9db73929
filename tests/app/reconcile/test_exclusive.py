"""One hand, one product: overlapping events of one direction go to the strongest product."""

import pytest

from app.reconcile.basket import PUT, TAKE_OUT, Event, belief
from app.reconcile.exclusive import one_product_per_moment


def event(activity: str, start: float, end: float, p: float, counted: bool = True) -> Event:
    return Event(activity, +1 if activity == PUT else -1, start, end, p, counted)


def test_the_stronger_of_two_overlapping_puts_keeps_it_and_the_other_is_explained_away() -> None:
    events = {"A": [event(PUT, 10.0, 13.0, 0.9)], "B": [event(PUT, 11.0, 12.0, 0.6)]}
    out = one_product_per_moment(events)
    assert out["A"] == events["A"]
    (b,) = out["B"]
    assert not b.counted and b.probability == pytest.approx(0.6 * (1 - 0.9))
    assert belief("A", out["A"]).qty == 1 and belief("B", out["B"]).qty == 0


def test_events_at_other_moments_or_of_the_other_direction_are_left_alone() -> None:
    events = {
        "A": [event(PUT, 10.0, 13.0, 0.9), event(TAKE_OUT, 40.0, 42.0, 0.55)],
        "B": [event(PUT, 20.0, 22.0, 0.6), event(PUT, 13.0, 15.0, 0.7)],  # touches, no overlap
        "C": [event(TAKE_OUT, 11.0, 12.0, 0.8)],  # a take-out while A is put in: another hand
    }
    assert one_product_per_moment(events) == events


def test_an_uncounted_near_miss_cannot_explain_a_counted_event_away() -> None:
    events = {
        "A": [event(PUT, 10.0, 13.0, 0.45, counted=False)],
        "B": [event(PUT, 11.0, 12.0, 0.6)],
    }
    out = one_product_per_moment(events)
    assert out["B"] == events["B"]  # only counted rivals explain away
    assert out["A"][0].probability == pytest.approx(0.45 * 0.4)  # the near miss weakens
