"""How likely a candidate move is a cart move: the log odds a trip's reading weighs it by.

``episodes.episode_candidates`` keeps every run of a handling's path where an item may have
moved into or out of the cart, counted by the path or not. Reading a trip against the
till's scans (``assignment``) needs, for each, what dropping it costs against counting it:
the log odds that it is a cart move, a logistic function of

    intercept + slope * odds + counted * (the path counts it)
              [+ cart * sqrt(cart change) + put * (a put candidate)],

``odds`` being the candidate's strongest cart answer against its shelf mirror's, in nats,
the cart change how much the cart band changed over it (``cart_changes``). The
coefficients are fitted on tuning trips by ``app.bench.candidate_odds`` and recorded in
docs/RESULTS.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.reconcile.episodes import Candidate


@dataclass(frozen=True)
class Odds:
    """The coefficients of the log odds that a candidate is a cart move, in nats."""

    intercept: float
    slope: float
    counted: float
    cart: float = 0.0  # per unit of the square root of the cart band's change
    put: float = 0.0  # added for a put candidate (the cart band read: 0 without it)


#: fitted on TUNE20 with the shipped model (see the module's docstring)
ODDS = Odds(intercept=-1.007, slope=1.429, counted=0.726)
#: the same with the cart band (``--data``), its unexplained changes candidates too
CART_ODDS = Odds(intercept=-3.034, slope=1.532, counted=0.693, cart=5.903, put=-1.241)


def odds_from_json(text: str) -> Odds:
    """The coefficients from JSON as ``main`` prints them (other keys are ignored); a
    ``ValueError`` that says what is wrong otherwise."""
    try:
        raw = json.loads(text)
        return Odds(
            *(float(raw[k]) for k in ("intercept", "slope", "counted")),
            **{k: float(raw[k]) for k in ("cart", "put") if k in raw},
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f'the odds must be {{"intercept": A, "slope": B, "counted": C}} in JSON: {error}'
        ) from error


def log_odds(
    candidates: Sequence[Candidate], odds: Odds = ODDS, changes: np.ndarray | None = None
) -> np.ndarray:
    """``(N,)`` the log odds that each candidate is a cart move: what dropping it costs, in
    the nats ``assignment`` adds up, against counting it. ``changes``: each
    candidate's cart band change (``cart_view``); None reads the answers alone."""
    features = odds_features(candidates, changes)
    return features @ np.array(_coefficients(odds)[: features.shape[1]])


def _coefficients(odds: Odds) -> tuple[float, ...]:
    return (odds.intercept, odds.slope, odds.counted, odds.cart, odds.put)


def odds_features(candidates: Sequence[Candidate], changes: np.ndarray | None) -> np.ndarray:
    """``(N, 3)`` (one, odds, counted), or ``(N, 5)`` with the square root of the cart
    band's change and whether it is a put candidate."""
    base = np.array([[1.0, c.odds, float(c.counted)] for c in candidates]).reshape(-1, 3)
    if changes is None:
        return base
    if len(changes) != len(candidates):
        raise ValueError(f"{len(changes)} cart changes for {len(candidates)} candidates")
    put = [float(c.moment.change > 0) for c in candidates]
    return np.column_stack([base, np.sqrt(np.maximum(changes, 0.0)), put])
