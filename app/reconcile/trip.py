"""A whole trip read against the till's scans: reconciliation's ``cart`` evidence.

Reading each product on its own (``basket.step_events``) counts a put wherever that
product's put answer is high, and most of what it gets wrong is the shelf and the cart
swapped (a return read as a put) or one product's move given to a look-alike: a false flag
either way. A checkout knows more than one product's answers: the whole store's answers at
each step, the cart band the camera sees below the shelves, and the till's scans. So this
reads the trip at once, as ``app.bench.reading_limits`` measured it (docs/RESULTS.md, "The
cart band"):

1. every handling's end and start on the most probable path through the per-step answers
   of all candidate products (``episodes``) is a candidate move, and so is every change of
   the cart band that no handling explains (``cart_changes``), each with the log odds that
   it is a cart move (``move_odds``: ``CART_ODDS`` where the session kept its band,
   ``ODDS`` from the answers alone where it did not; where a model pair answered
   (``model.pair``), ``PAIR_CART_ODDS`` and ``PAIR_ODDS`` also read the odds from all its
   models' answers together, which tell a put from a return more surely);
2. each candidate's product answers are read where it lies: from the same answers, or,
   where a model pair answered, from all its models' answers together, which name the
   moved product more often (docs/RESULTS.md, "Two models' answers served"); the
   candidates are always the lead model's;
3. the most probable assignment (``assignment``) gives each candidate to one product or to
   none, weighing its odds and each product's answer against the scans (``TRIP_PRICES``);
4. a product the best reading leaves over or under its scans is a discrepancy. Its margin
   is how much less probable the best reading without that difference is, in nats (0
   where another reading explains the trip as well), and its confidence the share of
   flags of that margin that were real on validation trips (``flag_confidence``).

Each product's belief holds the moves given to it, each with its steps as time evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.reconcile.assignment import Prices, assigned_flags
from app.reconcile.basket import NAMING, PUT, TAKE_OUT, Belief, Event, TimeEvidence, belief
from app.reconcile.cart_changes import cart_candidates
from app.reconcile.compare import Discrepancy, DiscrepancyKind
from app.reconcile.episodes import BIAS, SETTINGS, Settings, episode_candidates, named_odds
from app.reconcile.flag_confidence import (
    FLAG_CALIBRATION,
    FlagCalibration,
    capped,
    flag_confidence,
)
from app.reconcile.move_odds import CART_ODDS, ODDS, PAIR_CART_ODDS, PAIR_ODDS, log_odds
from app.reconcile.moves import renamed, with_evidence

#: the assignment's prices (nats an item): a scanned item the reading does not see moved
#: costs 4, an item seen and not scanned 1. A till's scan is strong evidence that the item
#: is in the cart, so a weak move that explains it is believed rather than a flag raised;
#: what a checkout must catch is the other way. Chosen on the tuning trips (``TUNE20``:
#: under 1 / 2 / 4 / 8 read 0.130 / 0.222 / 0.231 / 0.231 precision at recall 0.25;
#: docs/RESULTS.md)
TRIP_PRICES = Prices(over=1.0, under=4.0, spurious=6.0)


@dataclass(frozen=True)
class TripReading:
    beliefs: list[Belief]  # every candidate product's, in the order of the answers
    discrepancies: list[Discrepancy]  # most certain first
    band: bool  # whether the cart band was read


def read_trip(
    steps: Mapping[str, Mapping[str, Any]],
    scanned: Mapping[str, int],
    cells: np.ndarray | None,
    *,
    min_confidence: float = 0.0,
    settings: Settings = SETTINGS,
    prices: Prices = TRIP_PRICES,
    calibration: FlagCalibration = FLAG_CALIBRATION,
) -> TripReading:
    """Read per-step answers (SKU -> ``StepScores`` JSON, every candidate product of the
    session) with the session's cart band ``cells`` ``(L, h, w, 3)`` (None: not kept)
    against the ``scanned`` counts; discrepancies from ``min_confidence`` on, their
    confidence read from their margin by ``calibration``. A
    ``ValueError`` where the answers lack an activity the path reads."""
    skus = list(steps)
    if not skus:
        return TripReading([], [], False)
    lacking = sorted({a for sku in skus for a in BIAS if not steps[sku].get(a)})
    if lacking:
        raise ValueError(
            f"the per-step answers lack {', '.join(lacking)}, which a trip's reading needs"
        )
    fps = float(steps[skus[0]]["fps"])
    length = min(len(steps[sku][PUT]) for sku in skus)
    band = cells is not None and len(cells) >= length
    changes = None
    if band:
        assert cells is not None
        candidates, changes = cart_candidates(steps, cells.astype(np.float64), settings)
    else:
        candidates = episode_candidates(steps, settings)
    paired = all(steps[sku].get(NAMING) for sku in skus)  # a model pair answered
    if paired:  # its members' answers together count and name the moves
        naming = {sku: steps[sku][NAMING] for sku in skus}
        _check_naming(steps, naming)
        candidates = named_odds(candidates, naming)
        odds = log_odds(candidates, PAIR_CART_ODDS if band else PAIR_ODDS, changes)
        found_by = [renamed(c.moment, naming) for c in candidates]
    else:
        odds = log_odds(candidates, CART_ODDS if band else ODDS, changes)
        found_by = [c.moment for c in candidates]
    share = np.zeros(len(skus))
    moments = [with_evidence(m, share) for m in found_by]  # shares summing to one
    counts = np.array([scanned.get(sku, 0) for sku in skus], dtype=np.int64)
    best, flags = assigned_flags(moments, counts, prices, odds.tolist())
    events: dict[str, list[Event]] = {sku: [] for sku in skus}
    for m, owner, nats in zip(moments, best.owner, odds, strict=True):
        if owner is None:
            continue
        start, end = m.start / fps, m.end / fps
        p = _logistic(float(nats))
        activity = PUT if m.change > 0 else TAKE_OUT
        time = TimeEvidence(start, end, p)
        events[skus[owner]].append(Event(activity, m.change, start, end, p, True, time))
    beliefs = [belief(sku, events[sku]) for sku in skus]
    found = []
    for flag in flags:
        b, n = beliefs[flag.product], int(counts[flag.product])
        confidence = flag_confidence(flag.margin, calibration)
        if confidence < min_confidence:
            continue
        margin = capped(flag.margin)
        found.append(Discrepancy(_kind(b.qty, n), b.sku, b.qty, n, confidence, b.events, margin))
    found.sort(key=lambda d: (-(d.margin or 0.0), d.sku))
    return TripReading(beliefs, found, band)


def _check_naming(
    steps: Mapping[str, Mapping[str, Any]], naming: Mapping[str, Mapping[str, Any]]
) -> None:
    """A ``ValueError`` in a sentence where a pair's naming answers lack an activity the
    path reads or cover other steps than the lead's answers of the same product."""
    for sku, answers in naming.items():
        for activity in BIAS:
            values = answers.get(activity)
            if not values or len(values) != len(steps[sku][activity]):
                raise ValueError(
                    f"the model pair's naming answers of {sku} lack {activity} or cover "
                    "other steps than its answers"
                )


def _kind(expected: int, scanned: int) -> DiscrepancyKind:
    if expected > scanned:
        return DiscrepancyKind.NOT_SCANNED if scanned == 0 else DiscrepancyKind.QUANTITY
    return DiscrepancyKind.SCANNED_NOT_TAKEN if expected == 0 else DiscrepancyKind.QUANTITY


def _logistic(nats: float) -> float:
    return 1.0 if nats == math.inf else 0.5 * (1.0 + math.tanh(nats / 2.0))
