"""How many items of one product the cart holds at the end, read from activity answers.

One activity answer over a whole session says *which* activities happened with a product,
not how often nor in which order: ``put_in_cart`` and ``take_out_of_cart`` together may
mean "put back" or "took it out, looked, put it in again". So the session is asked about
in overlapping windows (``questions.py``); a run of consecutive windows where an activity
scores at least ``EVENT_THRESHOLD`` is one event, and events are replayed in time order.

What this can and cannot count: two puts of the same product within about one window
(16 s) merge into one event, so quantities are a lower bound when a shopper grabs several
identical items in one go. Take-outs that the model misses leave the item counted.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.answer.payloads import NAMING

TAKE = "take_from_shelf"
PUT = "put_in_cart"
RETURN = "return_to_shelf"
TAKE_OUT = "take_out_of_cart"

# an event counts towards the expected quantity from the score at which the worker calls
# an activity present
EVENT_THRESHOLD = 0.5
# per-step evidence: runs of one direction this close (seconds) are one event. The model
# often shows one put as two peaks a few seconds apart (measured on the demo session: 5-7 s),
# and the window path cannot tell two puts within its stride apart either
MERGE_GAP_S = 8.0


@dataclass(frozen=True)
class WindowScores:
    """The activity answer for one product in one window ``[start, end)`` (seconds)."""

    start: float
    end: float
    scores: Mapping[str, float]

    def into_cart(self) -> tuple[float, str]:
        return self.scores.get(PUT, 0.0), PUT

    def out_of_cart(self) -> tuple[float, str]:
        """Evidence that an item left the cart, and the activity that shows it.

        An item reaches the shelf either straight from it (a take first) or out of the
        cart, so a return with no take in the window is a take-out the model did not see.
        """
        direct = self.scores.get(TAKE_OUT, 0.0)
        implied = self.scores.get(RETURN, 0.0) * (1.0 - self.scores.get(TAKE, 0.0))
        return (direct, TAKE_OUT) if direct >= implied else (implied, RETURN)


@dataclass(frozen=True)
class TimeEvidence:
    """The time answer for an event: when in its window the activity happened."""

    start: float
    end: float
    score: float


@dataclass(frozen=True)
class Event:
    """An item put into (+1) or taken out of (-1) the cart, as far as the model saw it.

    ``counted`` events reach the threshold and make up the expected quantity; per
    direction the strongest window below it is kept as an uncounted event, so that a
    "not taken" verdict carries how close the model came to seeing one.
    """

    activity: str
    change: int
    start: float  # the window(s) the model saw it in
    end: float
    probability: float
    counted: bool
    time: TimeEvidence | None = None

    @property
    def at(self) -> float:
        return self.time.start if self.time is not None else self.start

    def to_json(self) -> dict[str, Any]:
        return {
            "activity": self.activity,
            "change": self.change,
            "from": self.start,
            "to": self.end,
            "probability": round(self.probability, 6),
            "counted": self.counted,
            "start": None if self.time is None else self.time.start,
            "end": None if self.time is None else self.time.end,
            "time_score": None if self.time is None else self.time.score,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        time = None
        if data.get("start") is not None:
            time = TimeEvidence(data["start"], data["end"], data["time_score"])
        return cls(
            data["activity"],
            data["change"],
            data["from"],
            data["to"],
            data["probability"],
            data["counted"],
            time,
        )


@dataclass(frozen=True)
class Belief:
    """What the model's answers say about one product's count in the cart at the end.

    ``qty`` is the count if every counted event happened; ``distribution[n]`` is the
    probability of ending with ``n`` items when each event (counted or not) happened with
    its own probability, independently.
    """

    sku: str
    qty: int
    distribution: tuple[float, ...]
    events: tuple[Event, ...]

    @property
    def confidence(self) -> float:
        """Probability that at least one item is in the cart."""
        return self.more_than(0)

    def more_than(self, n: int) -> float:
        return min(1.0, sum(self.distribution[n + 1 :]))

    def fewer_than(self, n: int) -> float:
        return min(1.0, sum(self.distribution[:n]))

    def to_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "qty": self.qty,
            "confidence": round(self.confidence, 6),
            "distribution": [round(p, 6) for p in self.distribution],
            "events": [e.to_json() for e in self.events],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Belief:
        return cls(
            data["sku"],
            data["qty"],
            tuple(data["distribution"]),
            tuple(Event.from_json(e) for e in data["events"]),
        )


def find_events(windows: Sequence[WindowScores]) -> list[Event]:
    """Counted events (one per run of windows at the threshold) and the strongest uncounted ones."""
    ordered = sorted(windows, key=lambda w: w.start)
    events: list[Event] = []
    for change in (+1, -1):
        evidence = [w.into_cart() if change > 0 else w.out_of_cart() for w in ordered]
        runs = itertools.groupby(enumerate(evidence), key=lambda e: e[1][0] >= EVENT_THRESHOLD)
        below: list[int] = []
        for counted, group in runs:
            members = [k for k, _ in group]
            if not counted:
                below += members
                continue
            p, activity = max(evidence[k] for k in members)
            start, end = ordered[members[0]].start, ordered[members[-1]].end
            events.append(Event(activity, change, start, end, p, True))
        best = max(below, key=lambda k: evidence[k][0], default=None)
        if best is not None and evidence[best][0] > 0.0:
            p, activity = evidence[best]
            events.append(Event(activity, change, ordered[best].start, ordered[best].end, p, False))
    return sorted(events, key=_replay_order)


def step_events(steps: Mapping[str, Any], start: float) -> list[Event]:
    """Events from one whole-session answer's per-step probabilities (``payload["steps"]``).

    Each memory step is a one-step window, so ``find_events`` reads runs of steps at the
    threshold as events; runs of one direction closer than ``MERGE_GAP_S`` are one event
    (a brief dip in the middle of a put), and each counted event's own steps are its time
    evidence, so no time question is needed.
    """
    fps = float(steps["fps"])
    labels = [k for k in steps if k not in ("fps", NAMING)]
    count = len(steps[labels[0]]) if labels else 0
    windows = [
        WindowScores(
            start + i / fps, start + (i + 1) / fps, {label: steps[label][i] for label in labels}
        )
        for i in range(count)
    ]
    events = _merged(find_events(windows))
    timed = [
        replace(e, time=TimeEvidence(e.start, e.end, e.probability)) if e.counted else e
        for e in events
    ]
    return sorted(timed, key=_replay_order)


def _merged(events: Sequence[Event]) -> list[Event]:
    """Counted runs of one direction within ``MERGE_GAP_S`` joined into one event; an
    uncounted near miss that close to a counted event is part of it, not another item."""
    counted: list[Event] = []
    for e in sorted((e for e in events if e.counted), key=lambda e: (e.change, e.start)):
        last = counted[-1] if counted else None
        if last is not None and e.change == last.change and e.start - last.end <= MERGE_GAP_S:
            strongest = max(last, e, key=lambda x: x.probability)
            counted[-1] = replace(strongest, start=last.start, end=max(last.end, e.end))
        else:
            counted.append(e)
    misses = [
        e
        for e in events
        if not e.counted
        and not any(
            c.change == e.change
            and e.start - c.end <= MERGE_GAP_S
            and c.start - e.end <= MERGE_GAP_S
            for c in counted
        )
    ]
    return counted + misses


def with_times(
    events: Sequence[Event], times: Mapping[tuple[str, float, float], TimeEvidence]
) -> list[Event]:
    """Attach the time answer asked for each counted event (keyed by activity and window)."""
    out = [
        replace(e, time=times.get((e.activity, e.start, e.end))) if e.counted else e for e in events
    ]
    return sorted(out, key=_replay_order)


def belief(sku: str, events: Sequence[Event]) -> Belief:
    """Replay ``events`` in time order: the counted quantity and the count distribution."""
    ordered = sorted(events, key=_replay_order)
    qty = 0
    distribution = [1.0]
    for e in ordered:
        if e.counted:
            qty = max(0, qty + e.change)
        moved = [0.0] * (len(distribution) + 1)
        for n, p_n in enumerate(distribution):
            moved[n] += p_n * (1.0 - e.probability)
            moved[max(0, n + e.change)] += p_n * e.probability
        distribution = moved
    while len(distribution) > 1 and distribution[-1] == 0.0:
        distribution.pop()
    return Belief(sku, qty, tuple(distribution), tuple(ordered))


def _replay_order(e: Event) -> tuple[float, int]:
    # at the same moment a take-out goes first: the one synthetic episode holding both is
    # take_out_of_cart, inspect, put_in_cart (the item goes back in)
    return (e.at, e.change)
