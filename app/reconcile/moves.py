"""A cart move as the trip readings see it: an item moved into or out of the cart over some
memory steps, with each candidate product's answer there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from app.reconcile.basket import PUT, TAKE_OUT

#: a model answer of 0 would make its logarithm minus infinity
FLOOR = 1e-4


@dataclass(frozen=True)
class Moment:
    """One item moved (``change`` +1 in, -1 out) over steps ``[start, end)``."""

    change: int
    start: int
    end: int
    peaks: np.ndarray  # (P,) each product's strongest probability over the moment's steps


def with_evidence(moment: Moment, extra: np.ndarray) -> Moment:
    """``moment`` with each product's log answer raised by ``extra`` ``(P,)`` nats, its peaks
    as shares summing to one (so that a log ratio of two is their score difference, the
    cost ``assignment`` reads)."""
    score = np.log(np.asarray(moment.peaks, dtype=np.float64) + FLOOR) + extra
    score = np.exp(score - score.max())
    return Moment(moment.change, moment.start, moment.end, score / score.sum())


def renamed(moment: Moment, steps: Mapping[str, Mapping[str, Sequence[float]]]) -> Moment:
    """``moment`` with each product's peak answer over its steps taken from other per-step
    answers of the same session (``steps``: SKU -> label -> per step, products in the
    moment's order): its move found by one model's answers, its product named by others'."""
    activity = PUT if moment.change > 0 else TAKE_OUT
    peaks = [max(answers[activity][moment.start : moment.end]) for answers in steps.values()]
    return Moment(moment.change, moment.start, moment.end, np.array(peaks, dtype=np.float64))
