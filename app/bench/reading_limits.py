"""How far a reading of the model's answers is from reconciliation's target, and why.

Reads kept per-step answers (``reconcile_decode --answers``) into each trip's cart moves,
reads those against the till's scans (``READINGS``: each move alone, ``scan_repair``'s
greedy explanation, and the most probable assignment of ``reconcile.assignment``, per flag
margin) and counts recall of the planted item, precision and false flags. Two things decide
the result, and each can be replaced by the annotation to see what the other costs:

- the moves (``--moves``): ``steps``, a move wherever a product's put or take-out answer
  reaches a threshold (``scan_repair.step_moments``); ``episodes``, a move where the
  handling around it ends in or starts from the cart (``episode_moments``); ``candidates``,
  every handling's end and start, each with the log odds that it is a cart move
  (``candidate_odds``, ``--odds``), which the assignment weighs against the scans and the
  other readings take where they are positive (with ``--data``, the odds also read the
  video's cart band and its unexplained changes are candidates too, ``cart_view``;
  ``--cart-naming W`` adds the votes of the catalog pictures matched where the band
  changed, ``cart_naming``); ``annotation``, the annotated puts and take-outs, each
  product's peak answer over the move's own steps.
  Every line also counts the moves found, missed and spurious against the annotation, and
  the first line says how the model reads each annotated activity's steps
  (``step_confusion``), which is where misread directions come from, and how well the
  handled product's answers tell each activity from its mirror, whatever their scales
  (``direction_auc``: a take-out from a put, a return from a take).
- naming the moved product (``--boost B``): ``B`` nats are added to the log answer of the
  true product of every moment that matches an annotated move, which raises how often the
  model names it first (``moved_product_top1``, printed). This measures what the model
  must reach, not what it reaches; ``--boost 0`` is the model as it is. ``--naming``
  takes each moment's product answers from other kept answers of the same sessions
  (another model's, or several averaged), the moves still read from ``--answers``; as the
  service reads a model pair's trips, the candidates' odds then read them too
  (``PAIR_ODDS``, ``PAIR_CART_ODDS``; ``--odds`` without a ``naming`` coefficient reads
  the moves from ``--answers`` alone).

Validation or tuning sets only.

    python -m app.bench.reconcile_decode --data DATA --split val --checkpoint RUN --answers A
    python -m app.bench.reading_limits --answers A [--moves steps,episodes,candidates,annotation]
        [--boost 0,2,6] [--margins 0,1,2] [--prices 1,1,6] [--episode-settings JSON]
        [--odds JSON] [--naming ANSWERS] [--data DIR [--cart-naming W]]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

from app.bench.cart_naming import candidate_votes
from app.bench.cart_view import session_frames
from app.bench.identify_fusion import kept_answers
from app.bench.move_matching import MOVES, matched_moves
from app.bench.reconcile_decode import flag_rates, planted_sessions
from app.bench.scan_repair import owned_beliefs, owners_after_scans, step_moments
from app.reconcile.assignment import PRICES, Prices, assigned_flags
from app.reconcile.basket import PUT, RETURN, TAKE, TAKE_OUT
from app.reconcile.cart_changes import cart_candidates
from app.reconcile.compare import compare
from app.reconcile.episodes import (
    SETTINGS,
    Settings,
    episode_candidates,
    episode_moments,
    named_odds,
    settings_from_json,
)
from app.reconcile.move_odds import (
    CART_ODDS,
    ODDS,
    PAIR_CART_ODDS,
    PAIR_ODDS,
    Odds,
    log_odds,
    odds_from_json,
)
from app.reconcile.moves import FLOOR, Moment, renamed, with_evidence
from app.video.cart_band import cart_cells
from model.synth.reader import read_dataset

#: each session's candidates by (video id, moves), read once for every boost and weight
KnownCandidates = dict[tuple[str, str], tuple[list[Moment], np.ndarray | None]]


def annotated_moves(session: dict[str, Any]) -> list[Moment]:
    """The annotation's puts and take-outs as moments, each product's peak answer over the
    move's own steps."""
    skus = list(session["steps"])
    fps = float(session["steps"][skus[0]]["fps"])
    moments = []
    for activity, _sku, start, end in session["spans"]:
        if activity in MOVES:
            a = math.floor(start * fps)
            b = max(a + 1, math.ceil(end * fps))
            answers = np.array([session["steps"][k][activity][a:b] for k in skus])  # (P, steps)
            moments.append(Moment(MOVES[activity], a, b, answers.max(axis=1)))
    return moments


#: where a session's moves may come from (``--moves``), as ``session_moves`` reads them
MOMENTS = ("steps", "episodes", "candidates", "annotation")


def session_candidates(
    session: dict[str, Any],
    moves: str,
    settings: Settings = SETTINGS,
    odds: Odds = ODDS,
    cells: np.ndarray | None = None,
    naming: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[Moment], np.ndarray | None]:
    """A session's moments read from the model's answers by a threshold (``steps``) or as
    whole handlings with ``settings`` (``episodes``), or the annotation's moves; with
    ``candidates``, every handling's end and start and the log odds that each is a cart
    move (``candidate_odds``; otherwise None: every moment is taken as one). Where
    ``cells`` (the video's ``cart_view.cart_cells``) are given, the odds also read how the
    cart band changed, and the band's changes that no candidate explains are candidates
    too (``cart_view.cart_candidates``); where ``odds`` read a pair's answers (a
    ``naming`` coefficient), each candidate's odds are read from ``naming`` too."""
    if moves == "candidates":
        changes = None
        if cells is None:
            candidates = episode_candidates(session["steps"], settings)
        else:
            candidates, changes = cart_candidates(session["steps"], cells, settings)
        if odds.naming != 0.0 and naming is not None:
            candidates = named_odds(candidates, naming)
        return [c.moment for c in candidates], log_odds(candidates, odds, changes)
    if moves == "steps":
        return step_moments(session["steps"]), None
    if moves == "episodes":
        return episode_moments(session["steps"], settings), None
    if moves == "annotation":
        return annotated_moves(session), None
    raise ValueError(f"moves {moves!r}: choose from {', '.join(MOMENTS)}")


def session_moves(
    session: dict[str, Any], moves: str, settings: Settings = SETTINGS
) -> list[Moment]:
    """The moments of ``session_candidates`` that are more likely cart moves than not."""
    moments, _odds, believed = read_moments(session, moves, settings)
    return [m for m, held in zip(moments, believed, strict=True) if held]


def read_moments(
    session: dict[str, Any],
    moves: str,
    settings: Settings = SETTINGS,
    odds: Odds = ODDS,
    namers: Mapping[str, dict[str, Any]] | None = None,
    cells: np.ndarray | None = None,
    evidence: np.ndarray | None = None,
    known: KnownCandidates | None = None,
) -> tuple[list[Moment], np.ndarray | None, list[bool]]:
    """``session_candidates``, each moment named by ``namers``' answers of the session
    (video id: per-step answers) where given, each product's log answer raised by
    ``evidence`` ``(N, P)`` nats where given (the pixels' votes), and whether each is taken
    as a move (its log odds are positive, or it has none); a ``ValueError`` if ``namers``
    lack the session. ``known`` keeps each session's candidates for the next call with the
    same settings, odds and band (reading the band's changes is the slow part)."""
    steps = None
    if namers is not None:
        steps = namers.get(session["video_id"], {})
        if list(steps) != list(session["steps"]):
            raise ValueError(f"no answers name the products of {session['video_id']}")
    if known is None:
        moments, dropped = session_candidates(session, moves, settings, odds, cells, steps)
    else:
        key = (str(session["video_id"]), moves)
        if key not in known:
            known[key] = session_candidates(session, moves, settings, odds, cells, steps)
        moments, dropped = known[key]
    if steps is not None:
        moments = [renamed(m, steps) for m in moments]
    if evidence is not None:
        moments = [with_evidence(m, e) for m, e in zip(moments, evidence, strict=True)]
    believed = [dropped is None or bool(dropped[i] > 0) for i in range(len(moments))]
    return moments, dropped, believed


def boosted(moment: Moment, product: int, boost: float) -> Moment:
    """``moment`` with ``product``'s log answer raised by ``boost``, shares summing to one."""
    extra = np.zeros(len(moment.peaks))
    extra[product] = boost
    return with_evidence(moment, extra)


#: how a trip's moves are read against the scans: each move's strongest product alone;
#: ``scan_repair``'s greedy explanation by the scans; the assignment, at each margin
READINGS = ("alone", "scans-explain", "scans-assign")


def score(
    sessions: list[dict[str, Any]],
    moves: str,
    boost: float,
    margins: Sequence[float],
    prices: Prices = PRICES,
    settings: Settings = SETTINGS,
    odds: Odds = ODDS,
    naming: Sequence[dict[str, Any]] | None = None,
    cart: Mapping[str, np.ndarray] | None = None,
    votes: Mapping[str, np.ndarray] | None = None,
    vote_weight: float = 0.0,
    known: KnownCandidates | None = None,
) -> list[dict[str, Any]]:
    """Recall, precision and false flags over the planted sessions: one line per reading,
    the assignment's once per margin; each line also counts the moves found, missed and
    spurious, and how often a matched moment names its product. ``naming``: other answers
    of the same sessions (another model's, several averaged) that name each moment's
    product, the moves still read from ``sessions``. ``cart``: each session's cart band
    (video id: ``cart_view.cart_cells``), which the candidates' odds then read; ``votes``:
    per session, each of those candidates' ``cart_naming.crop_votes``, added to its log
    answers ``vote_weight`` times. ``known``: the candidates of earlier calls with the same
    settings, odds and band (``read_moments``)."""
    namers = None if naming is None else {s["video_id"]: s["steps"] for s in naming}
    flagged: dict[str, list[list[tuple[bool, float]]]] = {r: [] for r in READINGS}
    named = found = spurious = annotated = 0
    for session, planted, scans in planted_sessions(sessions):
        skus = list(session["steps"])
        cells = None if cart is None else cart[session["video_id"]]
        evidence = None if votes is None else vote_weight * votes[session["video_id"]]
        moments, dropped, believed = read_moments(
            session, moves, settings, odds, namers, cells, evidence, known
        )
        match = matched_moves(session, moments)
        read = []
        for m, j, held in zip(moments, match, believed, strict=True):
            if j is None:
                m = boosted(m, 0, 0.0)  # shares, as every matched moment's are
            else:
                truth = skus.index(session["spans"][j][1])
                m = boosted(m, truth, boost)
                named += held and int(np.argmax(m.peaks)) == truth
            read.append(m)
        found += sum(j is not None and held for j, held in zip(match, believed, strict=True))
        spurious += sum(j is None and held for j, held in zip(match, believed, strict=True))
        annotated += sum(activity in MOVES for activity, *_ in session["spans"])
        scanned = np.array([scans.get(sku, 0) for sku in skus], dtype=np.int64)
        _, flags = assigned_flags(
            read, scanned, prices, None if dropped is None else dropped.tolist()
        )
        flagged["scans-assign"].append(
            [(skus[f.product] == planted and f.change > 0, f.margin) for f in flags]
        )
        fps = float(session["steps"][skus[0]]["fps"])
        taken = [m for m, h in zip(read, believed, strict=True) if h]
        for reading, owner in (
            ("alone", [int(np.argmax(m.peaks)) for m in taken]),
            ("scans-explain", owners_after_scans(taken, scanned)),
        ):
            differences = compare(owned_beliefs(skus, fps, taken, owner), scans)
            flagged[reading].append(
                [(d.sku == planted and d.expected > d.scanned, math.inf) for d in differences]
            )
    lines = []
    for reading, trips in flagged.items():
        for margin in margins if reading == "scans-assign" else [None]:
            kept = [[r for r, m in trip if margin is None or m >= margin] for trip in trips]
            lines.append(
                {
                    "moves": moves,
                    "boost": boost,
                    "reading": reading,
                    "margin": margin,
                    **flag_rates(kept),
                    "moves_found": found,
                    "moves_missed": annotated - found,
                    "moves_spurious": spurious,
                    "moved_product_top1": named / found if found else None,
                }
            )
    return lines


def step_confusion(sessions: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per annotated activity, how its inner steps are read: the activity with the strongest
    answer over the store's products at each step that lies wholly inside an annotated span
    (a step shared with the next activity is left out)."""
    out: dict[str, dict[str, int]] = {}
    for session in sessions:
        answers = next(iter(session["steps"].values()))
        labels = [k for k in answers if k != "fps"]
        fps = float(answers["fps"])
        strongest = np.stack(
            [
                np.array([s[label] for s in session["steps"].values()]).max(axis=0)
                for label in labels
            ]
        )  # (activities, L)
        for activity, _sku, start, end in session["spans"]:
            a, b = math.ceil(start * fps), min(strongest.shape[1], math.floor(end * fps))
            row = out.setdefault(activity, dict.fromkeys(labels, 0))
            for k in strongest[:, a:b].argmax(axis=0).tolist():
                row[labels[k]] += 1
    return out


#: activities that are each other played backwards: (one, its mirror)
MIRRORED = ((TAKE_OUT, PUT), (RETURN, TAKE))


def direction_auc(sessions: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Per mirrored pair ``(a, b)``, how well the handled product's own answers tell the
    inner steps of an annotated ``a`` from those of a ``b``: the area under the ROC curve of
    ``log(answer a / answer b)`` (1: always apart; 0.5: no sign of the direction). Unlike
    ``step_confusion`` it does not depend on how the two answers are scaled against each
    other, so it tells a model that cannot see the direction from one that sees it and
    favours the more frequent activity."""
    out: dict[str, float | None] = {}
    for a, b in MIRRORED:
        ratios: dict[str, list[float]] = {a: [], b: []}
        for session in sessions:
            for activity, sku, start, end in session["spans"]:
                answers = session["steps"].get(sku)
                if activity not in ratios or answers is None:
                    continue
                fps = float(answers["fps"])
                lo, hi = math.ceil(start * fps), min(len(answers[a]), math.floor(end * fps))
                ratio = np.log(np.asarray(answers[a][lo:hi]) + FLOOR) - np.log(
                    np.asarray(answers[b][lo:hi]) + FLOOR
                )
                ratios[activity].extend(ratio.tolist())
        ones, mirrors = ratios[a], ratios[b]
        out[f"{a}/{b}"] = (
            float(mannwhitneyu(ones, mirrors).statistic) / (len(ones) * len(mirrors))
            if ones and mirrors
            else None
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=Path, required=True, help="kept by reconcile_decode")
    parser.add_argument("--moves", default="steps", help="comma-separated: " + ",".join(MOMENTS))
    parser.add_argument("--boost", default="0", help="comma-separated nats")
    parser.add_argument("--margins", default="0,1,2")
    parser.add_argument("--prices", default="1,1,6", help="over,under,spurious in nats")
    parser.add_argument(
        "--episode-settings",
        default=None,
        help='the episode reading\'s settings as JSON, {"switch": S, "bias": {...}} (as '
        "episode_search prints them; default: episode_moments'",
    )
    parser.add_argument(
        "--odds",
        default=None,
        help="the candidates' log odds as JSON, as candidate_odds prints them (default: ODDS; "
        "with --data CART_ODDS; with --naming PAIR_ODDS, and with both PAIR_CART_ODDS, as "
        "the service reads a model pair's trips)",
    )
    parser.add_argument(
        "--naming",
        type=Path,
        default=None,
        help="answers of the same sessions, kept by reconcile_decode, that name each move's "
        "product (the moves are still read from --answers)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="the dataset of the answers: the candidates' odds also read the cart band "
        "(cart_view; default odds CART_ODDS, or --odds fitted by candidate_odds --data)",
    )
    parser.add_argument(
        "--cart-naming",
        default=None,
        help="comma-separated weights; with --data and --moves candidates: add each many "
        "times the votes of the catalog pictures matched where the cart band changed "
        "(cart_naming), one set of lines per weight",
    )
    parser.add_argument("--sessions", type=int, default=None, help="only the first N")
    args = parser.parse_args(argv)
    try:
        settings = (
            SETTINGS if args.episode_settings is None else settings_from_json(args.episode_settings)
        )
        default_odds = {
            (False, False): ODDS,
            (True, False): CART_ODDS,
            (False, True): PAIR_ODDS,
            (True, True): PAIR_CART_ODDS,
        }[(args.data is not None, args.naming is not None)]
        odds = default_odds if args.odds is None else odds_from_json(args.odds)
        sessions = kept_answers(args.answers, args.sessions, with_boxes=False)
        naming = None if args.naming is None else kept_answers(args.naming, None, with_boxes=False)
        over, under, spurious = (float(v) for v in args.prices.split(","))
        boosts = [float(b) for b in args.boost.split(",")]
        margins = [float(m) for m in args.margins.split(",")]
        weights = (
            [None] if args.cart_naming is None else [float(w) for w in args.cart_naming.split(",")]
        )
        if args.cart_naming is not None and args.data is None:
            raise ValueError("--cart-naming reads the videos: give --data")
        if args.cart_naming is not None and args.moves != "candidates":
            raise ValueError("--cart-naming names the cart band's candidates: --moves candidates")
        cart, votes = None, None
        if args.data is not None:
            dataset = read_dataset(args.data)
            cart, votes = {}, {}
            for s in sessions:
                frames = session_frames(dataset, s)
                cart[s["video_id"]] = cart_cells(frames)
                if args.cart_naming is not None:
                    votes[s["video_id"]] = candidate_votes(
                        dataset, s, frames, cart[s["video_id"]], settings
                    )
    except ValueError as error:
        parser.error(str(error))
    unknown = sorted(set(args.moves.split(",")) - set(MOMENTS))
    if unknown:
        parser.error(f"--moves {','.join(unknown)}: choose from {', '.join(MOMENTS)}.")
    print(
        json.dumps(
            {"step_confusion": step_confusion(sessions), "direction_auc": direction_auc(sessions)}
        )
    )
    known: KnownCandidates = {}
    for moves, boost, weight in itertools.product(args.moves.split(","), boosts, weights):
        try:
            lines = score(
                sessions,
                moves,
                boost,
                margins,
                Prices(over, under, spurious),
                settings,
                odds,
                naming,
                cart,
                None if weight is None else votes,
                weight or 0.0,
                known,
            )
        except ValueError as error:
            parser.error(str(error))
        for line in lines:
            print(json.dumps(line if weight is None else {**line, "cart_naming": weight}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
