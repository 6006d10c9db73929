"""Reconciliation with each cart move's product checked against the pixels where the model
places it.

``identify_fusion`` measures, at annotated puts and the annotation's boxes, how much the
catalog picture fitted to the pixels adds to the memory's answer. This measures the same
idea with nothing from the annotation: the moments are the model's (``--moves steps``,
``scan_repair.step_moments`` over the per-step put and take-out answers, or ``episodes``,
``episode_moments``, or ``candidates``, every handling's end and start with its log odds;
``annotation`` reads the annotated moves instead, as ``reading_limits`` does; ``--naming``
takes the product answers from other kept answers), the boxes are the model's (each
activity's object question, kept by ``reconcile_decode --answers``), and the product of
each moment is the argmax of ``log(peak) + weight x template votes`` over the crops of
the seconds the item is held around it (before a put, after a take-out). Each trip's
moments are then read four ways (``READINGS``) and compared with the till's scans as
``reconcile_decode`` does. Validation or tuning sets only.

    python -m app.bench.reconcile_decode --data DATA --split val --checkpoint RUN --answers A
    python -m app.bench.pixel_moments --data DATA --answers A [--weights 0,0.1]
        [--moves steps|episodes|candidates|annotation] [--naming ANSWERS]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.bench.identify_fusion import (
    catalog_pictures,
    kept_answers,
    model_boxes,
    template_votes,
)
from app.bench.move_matching import matched_moves
from app.bench.reading_limits import MOMENTS, read_moments, session_moves
from app.bench.reconcile_decode import flag_rates, planted_sessions
from app.bench.scan_repair import owned_beliefs, owners_after_scans
from app.reconcile.assignment import assign
from app.reconcile.basket import PUT, TAKE_OUT
from app.reconcile.compare import compare
from app.reconcile.moves import Moment, with_evidence
from model.evaluate.crop_match import CROP_SIZE, square_crop
from model.synth.reader import Dataset, read_dataset
from model.synth.video_io import iter_video_frames

#: how each moment's product is read: its strongest alone; in time order, a take-out only
#: from what is in the cart; as the scans explain it best, greedily (``owners_after_scans``);
#: or as the most probable whole reading against the scans (``reconcile.assignment.assign``)
READINGS = ("alone", "in-cart", "scans-explain", "scans-assign")
#: seconds the item is held before a put (the take and a look at it) or after a take-out
HELD_S = 4.0


def moment_sources(
    sessions: Sequence[dict[str, Any]], moves: str = "steps"
) -> dict[str, dict[str, Any]]:
    """Per direction, the annotated moves a moment of that direction overlaps (within a
    step; each moment matched once, any product), those none does (``missed``), and the
    moments left over (``spurious``): how far counting alone is off, whatever the naming.
    ``spurious_on`` counts the leftovers by the activities they overlap (``nothing``: none),
    which tells a move seen twice from a move whose direction was misread."""
    out: dict[str, dict[str, Any]] = {}
    for label, change in ((PUT, +1), (TAKE_OUT, -1)):
        found = annotated = 0
        spurious_on: dict[str, int] = {}
        for session in sessions:
            fps = float(next(iter(session["steps"].values()))["fps"])
            mine = [m for m in session_moves(session, moves) if m.change == change]
            match = matched_moves(session, mine)
            found += sum(j is not None for j in match)
            annotated += sum(activity == label for activity, *_ in session["spans"])
            for m, j in zip(mine, match, strict=True):
                if j is None:
                    on = "+".join(sorted(_overlapped(session["spans"], m, fps))) or "nothing"
                    spurious_on[on] = spurious_on.get(on, 0) + 1
        out[label] = {
            "found": found,
            "missed": annotated - found,
            "spurious": sum(spurious_on.values()),
            "spurious_on": dict(sorted(spurious_on.items(), key=lambda kv: -kv[1])),
        }
    return out


def _overlapped(spans: Sequence[Sequence[Any]], moment: Moment, fps: float) -> set[str]:
    """The activities of ``spans`` that a moment overlaps, within a step."""
    return {
        str(activity)
        for activity, _sku, start, end in spans
        if moment.start <= float(end) * fps + 1 and moment.end >= float(start) * fps - 1
    }


def held_steps(moment: Moment, steps: int, held: int) -> range:
    """Steps the moved item is in the hand: before a put and through it, or from a take-out
    on."""
    if moment.change > 0:
        return range(max(0, moment.start - held), moment.end)
    return range(moment.start, min(steps, moment.end + held))


def moment_votes(
    moments: Sequence[Moment],
    frames: Sequence[np.ndarray],
    boxes: np.ndarray,
    pictures: np.ndarray,
    held: int,
) -> list[np.ndarray]:
    """``(P,)`` template votes per moment, over crops at the model's ``boxes`` ``(L, 4)``."""
    steps = min(len(frames), len(boxes))
    out = []
    for m in moments:
        crops = [
            square_crop(frames[k], tuple(boxes[k]), CROP_SIZE) for k in held_steps(m, steps, held)
        ]
        if crops:
            out.append(template_votes(np.stack(crops), pictures))
        else:
            out.append(np.zeros(len(pictures)))
    return out


def fused_peaks(moment: Moment, votes: np.ndarray, weight: float) -> np.ndarray:
    """``(P,)`` the moment's products scored as ``softmax(log(peak) + weight x votes)``, so
    that a log ratio of two is their score difference (``owners_after_scans``' cost)."""
    return with_evidence(moment, weight * votes).peaks


def in_cart_owners(moments: Sequence[Moment]) -> list[int]:
    """Each moment's product read in time order, a take-out only ever given to a product the
    reading has in the cart at that moment (none there: its strongest product)."""
    owner = [0] * len(moments)
    count: dict[int, int] = {}
    for i in sorted(range(len(moments)), key=lambda i: (moments[i].start, -moments[i].change)):
        m = moments[i]
        peaks = m.peaks.copy()
        if m.change < 0 and any(n > 0 for n in count.values()):
            allowed = np.zeros(len(peaks), dtype=bool)
            allowed[[p for p, n in count.items() if n > 0]] = True
            peaks[~allowed] = -1.0
        owner[i] = int(peaks.argmax())
        count[owner[i]] = count.get(owner[i], 0) + m.change
    return owner


def score_sessions(
    sessions: list[dict[str, Any]],
    dataset: Dataset,
    weights: Sequence[float],
    seed: int = 0,
    moves: str = "steps",
    naming: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Per weight and reading (``READINGS``): recall, precision and false
    flags over the planted sessions. With ``moves="candidates"`` the assignment may drop
    each candidate at its log odds and the other readings take those at positive odds;
    ``naming`` (other kept answers of the same sessions) gives each moment's product
    answers, as ``reading_limits --naming`` does."""
    namers = None if naming is None else {s["video_id"]: s["steps"] for s in naming}
    # per weight and reading: per trip, whether each flag is real; flags under the scans
    trips: dict[tuple[float, str], list[list[bool]]] = {
        (w, r): [] for w in weights for r in READINGS
    }
    under = dict.fromkeys(trips, 0)
    for session, planted, scans in planted_sessions(sessions, seed):
        skus = list(session["steps"])
        fps = float(session["steps"][skus[0]]["fps"])
        frames = list(iter_video_frames(dataset.video_path(session["video_id"]), fps))
        pictures = catalog_pictures(dataset, skus)
        moments, dropped, believed = read_moments(session, moves, namers=namers)
        votes = moment_votes(moments, frames, model_boxes(session), pictures, round(HELD_S * fps))
        scanned = np.array([scans.get(sku, 0) for sku in skus], dtype=np.int64)
        for weight in weights:
            fused = [
                Moment(m.change, m.start, m.end, fused_peaks(m, v, weight))
                for m, v in zip(moments, votes, strict=True)
            ]
            # the moments the assignment gives to no product are read as spurious
            owners = assign(fused, scanned, dropped=None if dropped is None else list(dropped))
            kept = [(m, p) for m, p in zip(fused, owners.owner, strict=True) if p is not None]
            taken = [m for m, held in zip(fused, believed, strict=True) if held]
            readings = {
                "alone": (taken, [int(m.peaks.argmax()) for m in taken]),
                "in-cart": (taken, in_cart_owners(taken)),
                "scans-explain": (taken, owners_after_scans(taken, scanned)),
                "scans-assign": ([m for m, _ in kept], [p for _, p in kept]),
            }
            for reading, (read, owner) in readings.items():
                differences = compare(owned_beliefs(skus, fps, read, owner), scans)
                trips[(weight, reading)].append(
                    [d.sku == planted and d.expected > d.scanned for d in differences]
                )
                under[(weight, reading)] += sum(d.expected < d.scanned for d in differences)
    return [
        {
            "weight": w,
            "reading": r,
            **flag_rates(flags),
            # of the false flags, products seen fewer times than the till scanned them
            "under_scans_per_session": under[(w, r)] / max(len(flags), 1),
        }
        for (w, r), flags in trips.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--answers", type=Path, required=True, help="kept by reconcile_decode")
    parser.add_argument("--weights", default="0,0.05,0.1,0.2")
    parser.add_argument(
        "--moves",
        choices=MOMENTS,
        default="steps",
        help="where the moves come from: the model's per-step answers read by a threshold "
        "(steps) or as whole handlings (episodes), or the annotation",
    )
    parser.add_argument(
        "--naming",
        type=Path,
        default=None,
        help="answers of the same sessions, kept by reconcile_decode, that name each move's "
        "product before the pixels vote (the moves and boxes still come from --answers)",
    )
    parser.add_argument("--sessions", type=int, default=None, help="only the first N")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        sessions = kept_answers(args.answers, args.sessions, with_boxes=True)
        naming = None if args.naming is None else kept_answers(args.naming, None, with_boxes=False)
    except ValueError as error:
        parser.error(str(error))
    weights = [float(w) for w in args.weights.split(",")]
    print(json.dumps({"moves": args.moves, "moments": moment_sources(sessions, args.moves)}))
    try:
        lines = score_sessions(
            sessions, read_dataset(args.data), weights, moves=args.moves, naming=naming
        )
    except ValueError as error:
        parser.error(str(error))
    for line in lines:
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
