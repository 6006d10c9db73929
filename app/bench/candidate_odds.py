"""How likely a handling's end or start is a cart move, from the answers over its steps.

``episode_candidates`` keeps every run of a handling's path where an item may have moved
into or out of the cart, counted by the path or not. The reading of a trip against the
till's scans (``reconcile.assignment``) needs, for each, what dropping it costs against counting
it: the log odds that it is a cart move. This is a logistic fit of that on the tuning trips,

    logit P(cart move) = intercept + slope * odds + counted * (the path counts it)
                         [+ cart * sqrt(cart change) + put * (a put candidate)]
                         [+ naming * (the same odds read from a model pair's answers)],

``odds`` being the candidate's strongest cart answer against its shelf mirror's, in nats,
and a candidate a cart move where it matches an annotated put or take-out
(``move_matching``). With ``--data``, the fit also reads how much the cart band of the
video changed over the candidate (``cart_view``), and whether it is a put or a take-out
(a take-out changes the band less: the item may lie under another). ``ODDS`` are the
coefficients fitted on the 24 tuning trips of ``TUNE20`` (``synth --seed 57``) with the
shipped model, ``CART_ODDS`` the same with the cart band, ``PAIR_CART_ODDS`` and
``PAIR_ODDS`` those of the served pair (``--naming``: the odds also read from its members'
answers together), recorded in docs/RESULTS.md:

    python -m app.bench.candidate_odds --answers B [--episode-settings JSON] [--data DIR]
        [--naming E]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_expit

from app.bench.cart_view import session_cells
from app.bench.identify_fusion import kept_answers
from app.bench.move_matching import matched_moves
from app.reconcile.cart_changes import cart_candidates
from app.reconcile.episodes import (
    SETTINGS,
    Settings,
    episode_candidates,
    named_odds,
    settings_from_json,
)
from app.reconcile.move_odds import FEATURES, Odds, feature_names, odds_features
from model.synth.reader import Dataset, read_dataset


def labelled(
    sessions: Sequence[dict[str, Any]],
    settings: Settings = SETTINGS,
    dataset: Dataset | None = None,
    naming: Sequence[dict[str, Any]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, F)`` features (``move_odds.feature_names``: one, odds, counted; with the cart
    band read from ``dataset``'s videos, and the band's unexplained changes as candidates
    too, ``cart_view.cart_candidates``; with each candidate's odds read from ``naming``,
    other kept answers of the same sessions, as a model pair's together) and ``(N,)``
    labels (1: matches an annotated cart move) of every candidate of every session; a
    ``ValueError`` where ``naming`` lacks a session."""
    namers = {} if naming is None else {s["video_id"]: s["steps"] for s in naming}
    features: list[np.ndarray] = []
    labels: list[int] = []
    for session in sessions:
        changes = None
        if dataset is None:
            candidates = episode_candidates(session["steps"], settings)
        else:
            cells = session_cells(dataset, session)
            candidates, changes = cart_candidates(session["steps"], cells, settings)
        if naming is not None:
            steps = namers.get(session["video_id"], {})
            if list(steps) != list(session["steps"]):
                raise ValueError(f"no naming answers for the products of {session['video_id']}")
            candidates = named_odds(candidates, steps)
        features.append(odds_features(candidates, changes, naming is not None))
        moments = [c.moment for c in candidates]
        labels.extend(int(j is not None) for j in matched_moves(session, moments))
    width = len(feature_names(dataset is not None, naming is not None))
    return np.concatenate(features or [np.zeros((0, width))]), np.array(labels)


def fit_odds(features: np.ndarray, labels: np.ndarray, names: Sequence[str] | None = None) -> Odds:
    """The logistic fit (maximum likelihood) of ``labels`` on ``features``, whose columns
    are the coefficients ``names`` (default: the first of ``move_odds.FEATURES``, as many
    as there are columns)."""
    if labels.min(initial=1) == labels.max(initial=0):
        raise ValueError("fitting the odds needs candidates of both kinds, moves and not")
    sign = 2.0 * labels - 1.0  # (N,)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (features @ w)
        p_wrong = np.exp(log_expit(-margin))
        return float(-log_expit(margin).sum()), -(features * (sign * p_wrong)[:, None]).sum(0)

    found = minimize(loss, np.zeros(features.shape[1]), jac=True, method="BFGS")
    names = FEATURES[: features.shape[1]] if names is None else names
    return Odds(**{name: float(v) for name, v in zip(names, found.x, strict=True)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=Path, required=True, help="kept by reconcile_decode")
    parser.add_argument(
        "--episode-settings",
        default=None,
        help="the episode reading's settings as JSON, as episode_search prints them",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="the dataset of the answers: also read how the cart band changed (cart_view)",
    )
    parser.add_argument(
        "--naming",
        type=Path,
        default=None,
        help="other answers of the same sessions, kept by reconcile_decode (a model pair's "
        "averaged): also read each candidate's odds from them",
    )
    parser.add_argument("--sessions", type=int, default=None, help="only the first N")
    args = parser.parse_args(argv)
    try:
        settings = (
            SETTINGS if args.episode_settings is None else settings_from_json(args.episode_settings)
        )
        sessions = kept_answers(args.answers, args.sessions, with_boxes=False)
        dataset = None if args.data is None else read_dataset(args.data)
        naming = None if args.naming is None else kept_answers(args.naming, None, with_boxes=False)
        features, labels = labelled(sessions, settings, dataset, naming)
        odds = fit_odds(features, labels, feature_names(dataset is not None, naming is not None))
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps({"candidates": len(labels), "moves": int(labels.sum()), **asdict(odds)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
