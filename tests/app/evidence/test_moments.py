"""Which moments a flag's picture shows, and which stored thumbnails show them."""

from __future__ import annotations

from app.evidence.moments import FRAMES_PER_MOMENT, Moment, frame_times, moments_of
from app.reconcile import Discrepancy, DiscrepancyKind, Event, TimeEvidence

S = 1_000_000


def flag(*events: Event) -> Discrepancy:
    return Discrepancy(DiscrepancyKind.NOT_SCANNED, "SOUP", 1, 0, 0.8, events)


def put(start: float, end: float, p: float, *, counted: bool = True, time=None) -> Event:
    return Event("put_in_cart", 1, start, end, p, counted, time)


def test_counted_events_are_the_moments_strongest_first_shown_in_time_order() -> None:
    events = [
        put(0, 16, 0.6, time=TimeEvidence(9, 12, 0.6)),
        put(24, 48, 0.9, time=TimeEvidence(35, 36, 0.9)),
        put(48, 72, 0.7),  # no time answer: its window
        put(96, 112, 0.8, time=TimeEvidence(100, 102, 0.8)),
        put(80, 96, 0.95, counted=False),  # uncounted: not a moment while counted ones exist
    ]
    moments = moments_of(flag(*events))
    assert [(m.start, m.end, m.timed) for m in moments] == [
        (35, 36, True),
        (48, 72, False),
        (100, 102, True),
    ]


def test_without_a_counted_event_the_strongest_near_miss_is_shown() -> None:
    weak, strong = put(0, 16, 0.2, counted=False), put(32, 48, 0.4, counted=False)
    (moment,) = moments_of(flag(weak, strong))
    assert (moment.event, moment.start, moment.end, moment.timed) == (strong, 32, 48, False)
    assert moments_of(flag()) == []


def moment(start: float, end: float) -> Moment:
    return Moment(put(start, end, 0.9), start, end, timed=True)


def test_a_short_moment_shows_its_frames_and_a_second_either_side() -> None:
    stored = [t * S for t in range(120)]
    assert frame_times(moment(19, 22), stored) == [t * S for t in range(18, 24)]
    # one frame longer: the context gives way to the moment's own frames
    assert frame_times(moment(19, 23), stored) == [t * S for t in range(18, 24)]
    assert frame_times(moment(19, 24), stored) == [t * S for t in range(19, 25)]


def test_a_long_window_is_spread_evenly() -> None:
    stored = [t * S for t in range(120)]
    shown = frame_times(moment(0, 24), stored)
    assert len(shown) == FRAMES_PER_MOMENT and shown[0] == 0 and shown[-1] == 24 * S


def test_thinned_thumbnails_give_the_nearest_on_each_side() -> None:
    stored = [t * S for t in range(0, 120, 8)]
    assert frame_times(moment(19, 22), stored) == [16 * S, 24 * S]
    assert frame_times(moment(23, 24), stored) == [16 * S, 24 * S, 32 * S]
    assert frame_times(moment(19, 22), []) == []
