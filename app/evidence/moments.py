"""Which moments of a session show a flag, and which stored thumbnails show each moment.

A flag's evidence is the events behind its belief (``Discrepancy.evidence``). The counted
events are what the expected quantity rests on, so each is a moment (the strongest few);
a flag without one (the model saw the product go in too weakly, or not at all) is shown
by the strongest uncounted event, how close the model came. A moment spans the event's
time answer when it has one, else the window the model saw it in.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from app.reconcile import Discrepancy, Event

MAX_MOMENTS = 3  # rows of one picture: the strongest counted events
FRAMES_PER_MOMENT = 6
CONTEXT_S = 1.0  # shown before and after a moment: the hand arriving and leaving


@dataclass(frozen=True)
class Moment:
    """One event of a flag and the seconds ``[start, end]`` it is shown for."""

    event: Event
    start: float
    end: float
    timed: bool  # the span is the event's time answer, not just its window


def moments_of(flag: Discrepancy) -> list[Moment]:
    """The moments a flag's picture shows, in time order (none when it has no event)."""
    counted = [e for e in flag.evidence if e.counted]
    if counted:
        chosen = sorted(counted, key=lambda e: -e.probability)[:MAX_MOMENTS]
    else:
        strongest = max(flag.evidence, key=lambda e: e.probability, default=None)
        chosen = [] if strongest is None else [strongest]
    return sorted((_moment(e) for e in chosen), key=lambda m: (m.start, m.end))


def _moment(e: Event) -> Moment:
    if e.time is not None:
        return Moment(e, e.time.start, e.time.end, timed=True)
    return Moment(e, e.start, e.end, timed=False)


def frame_times(moment: Moment, stored_us: Sequence[int]) -> list[int]:
    """Times (microseconds) of at most ``FRAMES_PER_MOMENT`` stored thumbnails showing
    ``moment`` and a second around it (``stored_us`` sorted ascending). When there are
    more, the moment's own frames come first, evenly spread if they alone are too many.

    Where thinning left fewer than two inside, the nearest one on each side is taken, so
    a long session still shows the closest pictures it kept (their times are printed).
    """
    lo = round((moment.start - CONTEXT_S) * 1_000_000)
    hi = round((moment.end + CONTEXT_S) * 1_000_000)
    first, last = bisect.bisect_left(stored_us, lo), bisect.bisect_right(stored_us, hi)
    inside = list(stored_us[first:last])
    if len(inside) < 2:
        before = [stored_us[first - 1]] if first > 0 else []
        after = [stored_us[last]] if last < len(stored_us) else []
        return before + inside + after
    if len(inside) <= FRAMES_PER_MOMENT:
        return inside
    # too many: the moment's own frames first, then one of context on each side if room
    start_us, end_us = round(moment.start * 1_000_000), round(moment.end * 1_000_000)
    during = [t for t in inside if start_us <= t <= end_us]
    if len(during) >= FRAMES_PER_MOMENT:
        return _spread(during, FRAMES_PER_MOMENT)
    before = [t for t in inside if t < start_us][-1:]
    after = [t for t in inside if t > end_us][:1]
    return sorted(during + (before + after)[: FRAMES_PER_MOMENT - len(during)])


def _spread(times: Sequence[int], n: int) -> list[int]:
    """``n`` of ``times``, evenly spread, the first and the last included."""
    return [times[round(i * (len(times) - 1) / (n - 1))] for i in range(n)]
