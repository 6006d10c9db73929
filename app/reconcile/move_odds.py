"""How likely a candidate move is a cart move: the log odds a trip's reading weighs it by.

``episodes.episode_candidates`` keeps every run of a handling's path where an item may have
moved into or out of the cart, counted by the path or not. Reading a trip against the
till's scans (``assignment``) needs, for each, what dropping it costs against counting it:
the log odds that it is a cart move, a logistic function of

    intercept + slope * odds + counted * (the path counts it)
              [+ cart * sqrt(cart change) + put * (a put candidate)]
              [+ naming * (the odds read from a model pair's answers together)],

``odds`` being the candidate's strongest cart answer against its shelf mirror's, in nats,
the cart change how much the cart band changed over it (``cart_changes``). Where a model
pair answered, its members' answers together (``episodes.named_odds``) tell a put from a
return more surely than the lead's alone: ``PAIR_CART_ODDS`` and ``PAIR_ODDS`` read both.
The coefficients are fitted on tuning trips by ``app.bench.candidate_odds`` and recorded in
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
    naming: float = 0.0  # per nat of the odds read from a model pair's answers together


#: the features' names, in the order ``odds_features`` gives them and ``Odds`` holds them
FEATURES = ("intercept", "slope", "counted", "cart", "put", "naming")

#: fitted on TUNE20 with the shipped model (see the module's docstring)
ODDS = Odds(intercept=-1.007, slope=1.429, counted=0.726)
#: the same with the cart band (``--data``), its unexplained changes candidates too
CART_ODDS = Odds(intercept=-3.034, slope=1.532, counted=0.693, cart=5.903, put=-1.241)
#: the served pair's (``tiny-pair``): ``ODDS``' features and the odds read from its three
#: models' answers together (``candidate_odds --naming``, the same trips)
PAIR_ODDS = Odds(intercept=-1.037, slope=0.341, counted=1.028, naming=1.350)
#: the same with the cart band: ``PAIR_CART_ODDS`` on 24 validation trips (``VAL20``) that
#: fitted nothing misreads 102 of 4,360 candidates where ``CART_ODDS`` misreads 135
PAIR_CART_ODDS = Odds(
    intercept=-2.123, slope=0.142, counted=1.361, cart=4.970, put=-2.646, naming=1.619
)


def odds_from_json(text: str) -> Odds:
    """The coefficients from JSON as ``main`` prints them (other keys are ignored); a
    ``ValueError`` that says what is wrong otherwise."""
    try:
        raw = json.loads(text)
        return Odds(
            *(float(raw[k]) for k in FEATURES[:3]),
            **{k: float(raw[k]) for k in FEATURES[3:] if k in raw},
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f'the odds must be {{"intercept": A, "slope": B, "counted": C}} in JSON: {error}'
        ) from error


def feature_names(band: bool, naming: bool) -> tuple[str, ...]:
    """The names of ``odds_features``' columns: the answers' odds, with the cart band's
    change (``band``) and the pair's answers' odds (``naming``) where read."""
    return FEATURES[:3] + (FEATURES[3:5] if band else ()) + (FEATURES[5:] if naming else ())


def log_odds(
    candidates: Sequence[Candidate], odds: Odds = ODDS, changes: np.ndarray | None = None
) -> np.ndarray:
    """``(N,)`` the log odds that each candidate is a cart move: what dropping it costs, in
    the nats ``assignment`` adds up, against counting it. ``changes``: each
    candidate's cart band change (``cart_view``); None reads the answers alone. Odds with a
    ``naming`` coefficient also read each candidate's odds from a pair's answers
    (``episodes.named_odds``), and a ``ValueError`` says so where a candidate lacks them."""
    naming = odds.naming != 0.0
    features = odds_features(candidates, changes, naming)
    names = feature_names(changes is not None, naming)
    return features @ np.array([getattr(odds, name) for name in names])


def odds_features(
    candidates: Sequence[Candidate], changes: np.ndarray | None, naming: bool = False
) -> np.ndarray:
    """``(N, F)``: the columns ``feature_names`` lists: one, odds and counted; with
    ``changes``, the square root of the cart band's change and whether it is a put
    candidate; with ``naming``, the odds read from the pair's answers."""
    base = np.array([[1.0, c.odds, float(c.counted)] for c in candidates]).reshape(-1, 3)
    columns = [base]
    if changes is not None:
        if len(changes) != len(candidates):
            raise ValueError(f"{len(changes)} cart changes for {len(candidates)} candidates")
        put = [float(c.moment.change > 0) for c in candidates]
        columns.append(np.column_stack([np.sqrt(np.maximum(changes, 0.0)), put]).reshape(-1, 2))
    if naming:
        if any(c.naming is None for c in candidates):
            raise ValueError("these odds read a model pair's answers, which only one model gave")
        columns.append(np.array([c.naming for c in candidates], dtype=np.float64).reshape(-1, 1))
    return np.concatenate(columns, axis=1)
