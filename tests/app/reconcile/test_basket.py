"""Counting one product's items in the cart from per-window activity scores."""

import pytest

from app.reconcile.basket import (
    PUT,
    RETURN,
    TAKE,
    TAKE_OUT,
    Belief,
    Event,
    TimeEvidence,
    WindowScores,
    belief,
    find_events,
    step_events,
    with_times,
)


def windows(*scores: dict[str, float]) -> list[WindowScores]:
    """Windows of 16 s every 8 s with the given scores (missing labels score 0)."""
    return [WindowScores(8.0 * i, 8.0 * i + 16.0, s) for i, s in enumerate(scores)]


def counted(events: list[Event]) -> list[tuple[str, int, float, float]]:
    return [(e.activity, e.change, e.start, e.end) for e in events if e.counted]


def test_a_run_of_windows_is_one_event_and_separate_runs_are_separate() -> None:
    ws = windows({PUT: 0.9}, {PUT: 0.8}, {}, {}, {PUT: 0.7})
    assert counted(find_events(ws)) == [(PUT, 1, 0.0, 24.0), (PUT, 1, 32.0, 48.0)]
    b = belief("SKU-1", find_events(ws))
    assert b.qty == 2


def test_the_event_probability_is_the_runs_best_window() -> None:
    (put,) = [e for e in find_events(windows({PUT: 0.6}, {PUT: 0.95})) if e.counted]
    assert put.probability == pytest.approx(0.95)


def test_a_take_out_cancels_an_earlier_put() -> None:
    ws = windows({PUT: 0.9}, {}, {}, {TAKE_OUT: 0.9})
    b = belief("SKU-1", find_events(ws))
    assert b.qty == 0
    assert counted(list(b.events)) == [(PUT, 1, 0.0, 16.0), (TAKE_OUT, -1, 24.0, 40.0)]


def test_a_return_without_a_take_is_a_missed_take_out() -> None:
    ws = windows({PUT: 0.9}, {}, {}, {RETURN: 0.9})
    assert belief("SKU-1", find_events(ws)).qty == 0
    assert counted(find_events(ws))[-1] == (RETURN, -1, 24.0, 40.0)


def test_a_return_after_a_take_from_the_shelf_leaves_the_cart_alone() -> None:
    ws = windows({PUT: 0.9}, {}, {}, {TAKE: 0.9, RETURN: 0.9})
    assert belief("SKU-1", find_events(ws)).qty == 1


def test_take_out_before_any_put_does_not_go_below_zero() -> None:
    ws = windows({TAKE_OUT: 0.9}, {}, {}, {PUT: 0.9})
    assert belief("SKU-1", find_events(ws)).qty == 1


def test_below_the_threshold_nothing_is_counted_but_the_best_window_is_kept() -> None:
    events = find_events(windows({PUT: 0.1}, {PUT: 0.4}, {PUT: 0.2}))
    b = belief("SKU-1", events)
    assert b.qty == 0 and not counted(events)
    (best_put,) = [e for e in events if e.change == 1]
    assert (best_put.probability, best_put.start) == (pytest.approx(0.4), 8.0)
    # the doubt shows in the distribution: a 40 % chance one item is in the cart
    assert b.confidence == pytest.approx(0.4)


def test_the_distribution_multiplies_independent_events() -> None:
    b = belief(
        "SKU-1",
        [Event(PUT, 1, 0.0, 16.0, 0.8, True), Event(TAKE_OUT, -1, 40.0, 56.0, 0.5, True)],
    )
    assert b.qty == 0
    assert b.distribution == pytest.approx((0.2 + 0.8 * 0.5, 0.8 * 0.5))
    assert b.confidence == pytest.approx(0.4)
    assert b.more_than(1) == 0.0 and b.fewer_than(1) == pytest.approx(0.6)


def test_time_answers_order_events_inside_a_shared_window() -> None:
    # the model saw a put and a take-out in the same windows; the time answers say the put
    # came first, so the item is out at the end
    events = find_events(windows({PUT: 0.9, TAKE_OUT: 0.9}))
    assert belief("SKU-1", events).qty == 1  # without times: take-out first, then put
    times = {
        (PUT, 0.0, 16.0): TimeEvidence(2.0, 5.0, 0.7),
        (TAKE_OUT, 0.0, 16.0): TimeEvidence(9.0, 12.0, 0.6),
    }
    timed = with_times(events, times)
    assert belief("SKU-1", timed).qty == 0
    assert [e.time for e in timed if e.counted] == [times[(PUT, 0, 16)], times[(TAKE_OUT, 0, 16)]]


def test_beliefs_round_trip_through_json() -> None:
    events = with_times(
        find_events(windows({PUT: 0.9}, {TAKE_OUT: 0.3})),
        {(PUT, 0.0, 16.0): TimeEvidence(3.0, 6.0, 0.5)},
    )
    b = belief("SKU-1", events)
    again = Belief.from_json(b.to_json())
    assert again.qty == b.qty and again.events == b.events
    assert again.distribution == pytest.approx(b.distribution, abs=1e-6)


def per_step(fps: float = 1.0, **series: list[float]) -> dict:
    """A whole-session answer's ``steps``: one probability per memory step per activity."""
    n = max(len(v) for v in series.values())
    return {"fps": fps, **{k: v + [0.0] * (n - len(v)) for k, v in series.items()}}


def test_steps_put_take_out_and_put_again_end_with_one_item_in_time_order() -> None:
    put = [0, 0.9, 0.8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.7, 0.9, 0]
    out = [0, 0, 0, 0, 0, 0, 0.8, 0.9, 0, 0, 0, 0, 0, 0, 0]
    events = step_events(per_step(**{PUT: put, TAKE_OUT: out}), start=0.0)
    assert counted(events) == [(PUT, 1, 1.0, 3.0), (TAKE_OUT, -1, 6.0, 8.0), (PUT, 1, 12.0, 14.0)]
    b = belief("SKU-1", events)
    assert b.qty == 1
    # a model pair's naming answers beside the labels are not an activity of their own
    steps = per_step(**{PUT: put, TAKE_OUT: out}) | {"naming": {PUT: put, TAKE_OUT: out}}
    assert step_events(steps, start=0.0) == events
    # each counted event carries its own steps as time evidence: no time question needed
    assert [(e.time.start, e.time.end) for e in events if e.counted and e.time] == [
        (1.0, 3.0),
        (6.0, 8.0),
        (12.0, 14.0),
    ]


def test_a_brief_dip_inside_one_put_is_one_event_and_separate_puts_are_two() -> None:
    dip = [0, 0.9, 0.3, 0.2, 0.1, 0.9, 0]  # a few seconds below the threshold: the same put
    assert len(counted(step_events(per_step(**{PUT: dip}), start=0.0))) == 1
    two = [0.9, 0.8] + [0.0] * 9 + [0.9, 0.9]  # nine seconds apart: two puts
    b = belief("SKU-1", step_events(per_step(**{PUT: two}), start=0.0))
    assert b.qty == 2


def test_steps_at_a_window_start_and_another_fps_keep_their_session_times() -> None:
    events = step_events(per_step(fps=2.0, **{PUT: [0, 0, 0.9, 0.9]}), start=30.0)
    assert counted(events) == [(PUT, 1, 31.0, 32.0)]


def test_steps_below_the_threshold_count_nothing_but_keep_the_closest_call() -> None:
    events = step_events(per_step(**{PUT: [0.1, 0.4, 0.2], TAKE_OUT: [0.05]}), start=0.0)
    b = belief("SKU-1", events)
    assert b.qty == 0 and counted(events) == []
    (closest_put,) = [e for e in events if e.change == 1]
    assert closest_put.probability == pytest.approx(0.4) and not closest_put.counted
    assert 0.0 < b.confidence < 0.5  # the near miss still makes "one item" possible
