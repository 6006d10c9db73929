"""How likely a handling's end or start is a cart move, from the answers over its steps.

``episode_candidates`` keeps every run of a handling's path where an item may have moved
into or out of the cart, counted by the path or not. The reading of a trip against the
till's scans (``scan_assignment``) needs, for each, what dropping it costs against counting
it: the log odds that it is a cart move. This is a logistic fit of that on the tuning trips,

    logit P(cart move) = intercept + slope * odds + counted * (the path counts it),

``odds`` being the candidate's strongest cart answer against its shelf mirror's, in nats,
and a candidate a cart move where it matches an annotated put or take-out
(``move_matching``). ``ODDS`` are the coefficients fitted on the 24 tuning trips of
``TUNE20`` (``synth --seed 57``) with the shipped model, recorded in docs/RESULTS.md:

    python -m app.bench.candidate_odds --answers B [--episode-settings JSON]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_expit

from app.bench.episode_moments import (
    SETTINGS,
    Candidate,
    Settings,
    episode_candidates,
    settings_from_json,
)
from app.bench.identify_fusion import kept_answers
from app.bench.move_matching import matched_moves


@dataclass(frozen=True)
class Odds:
    """The coefficients of the log odds that a candidate is a cart move, in nats."""

    intercept: float
    slope: float
    counted: float


#: fitted on TUNE20 with the shipped model (see the module's docstring)
ODDS = Odds(intercept=-1.007, slope=1.429, counted=0.726)


def odds_from_json(text: str) -> Odds:
    """The coefficients from JSON as ``main`` prints them (other keys are ignored); a
    ``ValueError`` that says what is wrong otherwise."""
    try:
        raw = json.loads(text)
        return Odds(*(float(raw[k]) for k in ("intercept", "slope", "counted")))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f'the odds must be {{"intercept": A, "slope": B, "counted": C}} in JSON: {error}'
        ) from error


def log_odds(candidates: Sequence[Candidate], odds: Odds = ODDS) -> np.ndarray:
    """``(N,)`` the log odds that each candidate is a cart move: what dropping it costs, in
    the nats ``scan_assignment`` adds up, against counting it."""
    return np.array(
        [odds.intercept + odds.slope * c.odds + odds.counted * c.counted for c in candidates]
    )


def labelled(
    sessions: Sequence[dict[str, Any]], settings: Settings = SETTINGS
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3)`` features (one, odds, counted) and ``(N,)`` labels (1: matches an annotated
    cart move) of every candidate of every session."""
    features: list[list[float]] = []
    labels: list[int] = []
    for session in sessions:
        candidates = episode_candidates(session["steps"], settings)
        match = matched_moves(session, [c.moment for c in candidates])
        features.extend([1.0, c.odds, float(c.counted)] for c in candidates)
        labels.extend(int(j is not None) for j in match)
    return np.array(features).reshape(-1, 3), np.array(labels)


def fit_odds(features: np.ndarray, labels: np.ndarray) -> Odds:
    """The logistic fit (maximum likelihood) of ``labels`` on ``features``."""
    if labels.min(initial=1) == labels.max(initial=0):
        raise ValueError("fitting the odds needs candidates of both kinds, moves and not")
    sign = 2.0 * labels - 1.0  # (N,)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (features @ w)
        p_wrong = np.exp(log_expit(-margin))
        return float(-log_expit(margin).sum()), -(features * (sign * p_wrong)[:, None]).sum(0)

    found = minimize(loss, np.zeros(3), jac=True, method="BFGS")
    return Odds(*(float(v) for v in found.x))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=Path, required=True, help="kept by reconcile_decode")
    parser.add_argument(
        "--episode-settings",
        default=None,
        help="the episode reading's settings as JSON, as episode_search prints them",
    )
    parser.add_argument("--sessions", type=int, default=None, help="only the first N")
    args = parser.parse_args(argv)
    try:
        settings = (
            SETTINGS if args.episode_settings is None else settings_from_json(args.episode_settings)
        )
        sessions = kept_answers(args.answers, args.sessions, with_boxes=False)
        features, labels = labelled(sessions, settings)
        odds = fit_odds(features, labels)
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps({"candidates": len(labels), "moves": int(labels.sum()), **asdict(odds)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
