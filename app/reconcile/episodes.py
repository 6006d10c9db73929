"""Cart moves read from per-step answers as whole handlings of an item (a Viterbi path).

``app.bench.scan_repair.step_moments`` counts a move wherever some product's put or take-out answer
reaches a threshold, each direction on its own, and most of its mistakes are a move's
direction misread: a return to the shelf read as a put, a put as a take-out (the two are
each other played backwards). A handling has a shape that says more: it starts by taking
the item from the shelf or out of the cart, may pause while it is looked at, and ends with
the item in the cart or back on the shelf, once. This reads each step's strongest answer per
activity (over the store's products) as the most probable path through that shape, so that
a put is counted only where a handling ends in the cart and a take-out only where one starts
there; a step that the model calls both a put and a return is decided by the steps around
it. Each counted run becomes a ``Moment`` with every product's peak answer over its steps.

The states' log scores are ``log(answer) + BIAS[activity]`` (idle: ``log(1 - strongest)``)
and every change of state costs ``SWITCH`` nats. Both were chosen on the tuning stores
(24 twenty-minute sessions, ``synth --seed 57``) by a coordinate search on moment errors
(missed plus spurious moves), ``app.bench.episode_search``, and are recorded in
docs/RESULTS.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from app.reconcile.basket import PUT, RETURN, TAKE, TAKE_OUT
from app.reconcile.moves import Moment

INSPECT = "inspect"
#: nats every change of state costs: a path does not flicker between activities
SWITCH = 0.25
#: nats added to each activity's log answer against idle (the answers are calibrated for
#: "did it happen in this window", which is stricter than "is this step part of it")
BIAS = {TAKE: 2.0, INSPECT: 2.5, PUT: 2.0, RETURN: 2.0, TAKE_OUT: 2.0}
#: the floor of an answer inside a logarithm
FLOOR = 1e-3


@dataclass(frozen=True)
class Settings:
    """A path's price for changing state and each activity's nats against idle."""

    switch: float = SWITCH
    bias: Mapping[str, float] = field(default_factory=lambda: dict(BIAS))


SETTINGS = Settings()


def settings_from_json(text: str) -> Settings:
    """``{"switch": S, "bias": {activity: nats}}`` as ``episode_search`` prints it; a
    ``ValueError`` that says what is wrong otherwise."""
    try:
        raw = json.loads(text)
        switch, bias = float(raw["switch"]), {str(k): float(v) for k, v in raw["bias"].items()}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(
            f'episode settings must be {{"switch": S, "bias": {{...}}}} in JSON: {error}'
        ) from error
    if set(bias) != set(BIAS):
        raise ValueError(f"episode settings need a bias for each of {', '.join(BIAS)}")
    return Settings(switch, bias)


#: the states of one handling: (name, activity, states that may follow besides itself).
#: A handling from the shelf may end in the cart or back on the shelf; one from the cart
#: goes back to the shelf, or back into the cart after a look (the item's count unchanged).
_NEW = ("idle", "take", "take_out")  # what may follow a finished handling
STATES: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("idle", None, ("take", "take_out")),
    ("take", TAKE, ("look", "put", "return")),
    ("look", INSPECT, ("put", "return")),
    ("put", PUT, _NEW),
    ("return", RETURN, _NEW),
    ("take_out", TAKE_OUT, ("return_out", "look_out")),
    ("return_out", RETURN, _NEW),
    ("look_out", INSPECT, ("put_back",)),
    ("put_back", PUT, _NEW),
)
_INDEX = {name: i for i, (name, _, _) in enumerate(STATES)}
#: states that move an item into (+1) or out of (-1) the cart, as counted moments
COUNTED = {"put": +1, "put_back": +1, "take_out": -1}


def _transitions(switch: float) -> np.ndarray:
    """``(S, S)`` log scores of moving from one state to the next (-inf: not allowed)."""
    size = len(STATES)
    out = np.full((size, size), -np.inf)
    for i, (_, _, following) in enumerate(STATES):
        out[i, i] = 0.0
        for name in following:
            out[i, _INDEX[name]] = -switch
    return out


def episode_path(answers: Mapping[str, np.ndarray], settings: Settings = SETTINGS) -> list[str]:
    """The most probable state per step, given each activity's strongest answer ``(L,)``."""
    activities = list(BIAS)
    strongest = np.stack([np.asarray(answers[a], dtype=np.float64) for a in activities])
    steps = strongest.shape[1]
    if steps == 0:
        return []
    scores = np.empty((len(STATES), steps))  # (S, L)
    for i, (_, activity, _) in enumerate(STATES):
        if activity is None:
            scores[i] = np.log(1.0 - strongest.max(axis=0) + FLOOR)
        else:
            scores[i] = np.log(answers[activity] + FLOOR) + settings.bias[activity]
    moves = _transitions(settings.switch)
    best = np.full(len(STATES), -np.inf)
    for name in ("idle", "take", "take_out"):  # a session starts between handlings
        best[_INDEX[name]] = scores[_INDEX[name], 0]
    back = np.zeros((steps, len(STATES)), dtype=np.int64)
    for t in range(1, steps):
        candidates = best[:, None] + moves  # (S from, S to)
        back[t] = candidates.argmax(axis=0)
        best = candidates.max(axis=0) + scores[:, t]
    state = int(best.argmax())
    path = [state]
    for t in range(steps - 1, 0, -1):
        state = int(back[t, state])
        path.append(state)
    return [STATES[s][0] for s in reversed(path)]


def episode_moments(
    steps: Mapping[str, Mapping[str, Any]], settings: Settings = SETTINGS
) -> list[Moment]:
    """The counted moments of per-step answers (products in ``steps`` order), put moments
    first, as ``app.bench.scan_repair.step_moments`` orders them: the candidates the path counts."""
    return [c.moment for c in episode_candidates(steps, settings) if c.counted]


#: the runs a cart move may hide in, by direction: the end of a handling (into the cart, or
#: onto the shelf) and its start (out of the cart, or off the shelf); with the activity that
#: would move the item and its shelf mirror
_ENDS = {"put", "put_back", "return", "return_out"}
_STARTS = {"take", "take_out"}
CANDIDATE_KINDS = ((+1, _ENDS, PUT, RETURN), (-1, _STARTS, TAKE_OUT, TAKE))
#: per direction, the activity that moves an item that way and its shelf mirror
_ACTIVITIES = {change: (cart, shelf) for change, _, cart, shelf in CANDIDATE_KINDS}


@dataclass(frozen=True)
class Candidate:
    """A run of the path where an item may have moved into (+1) or out of (-1) the cart:
    ``moment.peaks`` are each product's peak cart answer over its steps."""

    moment: Moment
    counted: bool  # the path reads it as the cart move (a put, a take-out)
    odds: float  # nats: the strongest cart answer over its steps against the shelf mirror's
    #: nats: the same odds read from other answers of the session (a model pair's, which
    #: its members give together: ``named_odds``); None where only one model answered
    naming: float | None = None


def episode_candidates(
    steps: Mapping[str, Mapping[str, Any]], settings: Settings = SETTINGS
) -> list[Candidate]:
    """Every handling's end and start on the path, counted or not, put side first.

    ``episode_moments`` keeps only the runs the path reads as cart moves, and most of its
    mistakes are the shelf and the cart swapped: a return read as a put, a take-out read as
    a take from the shelf. Keeping the other runs as candidates, each with how strongly the
    answers prefer the cart, lets a reading that knows the till's scans decide them.
    """
    if not steps:
        return []
    per_product = product_answers(steps)
    path = episode_path({a: v.max(axis=0) for a, v in per_product.items()}, settings)
    candidates = []
    for change, states, _cart, _shelf in CANDIDATE_KINDS:
        for start, end in _runs(path, states):
            counted = COUNTED.get(path[start]) == change
            candidates.append(run_candidate(per_product, change, start, end, counted))
    return candidates


def product_answers(steps: Mapping[str, Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Per activity, every product's per-step answers ``(P, L)``, products in ``steps``
    order."""
    skus = list(steps)
    return {a: np.array([steps[sku][a] for sku in skus], dtype=np.float64) for a in BIAS}


def run_candidate(
    per_product: Mapping[str, np.ndarray], change: int, start: int, end: int, counted: bool
) -> Candidate:
    """The candidate move of direction ``change`` over steps ``[start, end)``: each
    product's peak cart answer there, and its odds (the strongest cart answer against the
    strongest answer of its shelf mirror, in nats)."""
    cart, shelf = _ACTIVITIES[change]
    peaks = per_product[cart][:, start:end].max(axis=1)  # (P,)
    mirror = per_product[shelf][:, start:end].max()
    odds = float(np.log(peaks.max() + FLOOR) - np.log(mirror + FLOOR))
    return Candidate(Moment(change, start, end, peaks), counted, odds)


def named_odds(
    candidates: Sequence[Candidate], naming: Mapping[str, Mapping[str, Any]]
) -> list[Candidate]:
    """``candidates`` with their odds read from ``naming`` too (SKU -> per-step answers of
    every activity, the products in the order the candidates' answers had them): a model
    pair's members together tell a put in the cart from a return to the shelf more surely
    than its lead alone (docs/RESULTS.md, "Counting with the pair's answers")."""
    per_product = product_answers(naming)
    return [
        replace(c, naming=run_candidate(per_product, m.change, m.start, m.end, c.counted).odds)
        for c in candidates
        for m in (c.moment,)
    ]


def _runs(path: Sequence[str], states: set[str]) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of one of ``states``; a run of one state followed by
    another of the set (a put right after a put) is two runs."""
    runs: list[tuple[int, int]] = []
    for t, state in enumerate(path):
        if state not in states:
            continue
        if runs and runs[-1][1] == t and path[t - 1] == state:
            runs[-1] = (runs[-1][0], t + 1)
        else:
            runs.append((t, t + 1))
    return runs
