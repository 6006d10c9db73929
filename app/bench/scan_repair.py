"""A reading of per-step answers that lets the scans explain the model's confusions.

An offline measurement, not a production decoder: it asks how many products would still be
flagged if every confusion the scans can explain were explained, which bounds the precision
any reading of these answers can reach. Each moment where some product's answer for a
direction (put or take-out) reaches the threshold is one item moved, given to the product
whose answer peaks highest in it; runs of moments closer than ``gap_s`` are one. Then, while
a product holds more items than the till scanned and another fewer, a moment of the first
whose runner-ups (its ``top_k`` strongest products) include the second is given to the
second, cheapest first (the log ratio of the two peaks). What stays above the scans after
that is what a reading of these answers cannot explain away: a confusion whose true product
is not short, a take-out the model did not see, or the item the till really missed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.reconcile.basket import PUT, TAKE_OUT, Belief, Event, belief
from app.reconcile.moves import Moment

#: the steps' probability at which a moment counts (lower than the production threshold: a
#: moment's product is decided by comparison, so it may be found at a weaker peak)
MOMENT_THRESHOLD = 0.3
#: runs of one direction this close (seconds) are one moment
MOMENT_GAP_S = 2.0
#: a moment may be given to any of its strongest ``TOP_K`` products
TOP_K = 3


def find_moments(scores: np.ndarray, change: int, threshold: float, gap_steps: int) -> list[Moment]:
    """Moments of one direction from ``scores`` (P products, T steps)."""
    on = np.flatnonzero(scores.max(axis=0) >= threshold)
    spans: list[list[int]] = []
    for t in on.tolist():
        if spans and t - spans[-1][1] <= gap_steps:
            spans[-1][1] = t + 1
        else:
            spans.append([t, t + 1])
    return [Moment(change, a, b, scores[:, a:b].max(axis=1)) for a, b in spans]


def owners_after_scans(
    moments: Sequence[Moment], scanned: np.ndarray, top_k: int = TOP_K
) -> list[int]:
    """Each moment's product after the scans explained what they can (indices into P)."""
    owner = [int(m.peaks.argmax()) for m in moments]
    strongest = [np.argsort(-m.peaks)[:top_k].tolist() for m in moments]  # fixed per moment
    while True:
        surplus = _net(moments, owner, len(scanned)) - scanned  # (P,)
        best: tuple[float, int, int] | None = None
        for i, m in enumerate(moments):
            mine = owner[i]
            if m.change * surplus[mine] <= 0:
                continue  # only a moment of a product counted too far in its direction moves
            for q in strongest[i]:
                if q == mine or m.change * surplus[q] >= 0:
                    continue
                cost = float(np.log(m.peaks[mine] / max(float(m.peaks[q]), 1e-6)))
                if best is None or cost < best[0]:
                    best = (cost, i, q)
        if best is None:
            return owner
        owner[best[1]] = best[2]


def _net(moments: Sequence[Moment], owner: Sequence[int], products: int) -> np.ndarray:
    net = np.zeros(products, dtype=np.int64)
    for m, p in zip(moments, owner, strict=True):
        net[p] += m.change
    return net


def scan_repaired_beliefs(
    steps: Mapping[str, Mapping[str, Any]],
    scans: Mapping[str, int],
    *,
    threshold: float = MOMENT_THRESHOLD,
    gap_s: float = MOMENT_GAP_S,
    top_k: int = TOP_K,
) -> list[Belief]:
    """Every product's belief after the scans explained the confusions they can."""
    skus = list(steps)
    if not skus:
        return []
    fps = float(steps[skus[0]]["fps"])
    moments = step_moments(steps, threshold, gap_s)
    scanned = np.array([scans.get(sku, 0) for sku in skus], dtype=np.int64)
    return owned_beliefs(skus, fps, moments, owners_after_scans(moments, scanned, top_k))


def step_moments(
    steps: Mapping[str, Mapping[str, Any]],
    threshold: float = MOMENT_THRESHOLD,
    gap_s: float = MOMENT_GAP_S,
) -> list[Moment]:
    """The put moments, then the take-out moments, of per-step answers (products in
    ``steps`` order)."""
    skus = list(steps)
    if not skus:
        return []
    gap = round(gap_s * float(steps[skus[0]]["fps"]))
    return [
        m
        for label, change in ((PUT, +1), (TAKE_OUT, -1))
        for m in find_moments(
            np.array([steps[sku][label] for sku in skus], dtype=np.float64), change, threshold, gap
        )
    ]


def owned_beliefs(
    skus: Sequence[str], fps: float, moments: Sequence[Moment], owner: Sequence[int]
) -> list[Belief]:
    """Every product's belief: the moments given to it (``owner``: an index into ``skus``
    per moment), each counted as its move at its peak."""
    events: dict[str, list[Event]] = {sku: [] for sku in skus}
    for m, p in zip(moments, owner, strict=True):
        label = PUT if m.change > 0 else TAKE_OUT
        e = Event(label, m.change, m.start / fps, m.end / fps, float(m.peaks[p]), True)
        events[skus[p]].append(e)
    return [belief(sku, e) for sku, e in events.items()]
