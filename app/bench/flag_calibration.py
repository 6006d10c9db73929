"""Does a trip's flag confidence mean what it says? Fit it, and check it.

Reads kept per-step answers (``reconcile_decode --answers``) as the service reads a trip
(``app.reconcile.trip.read_trip``, with the video's cart band when ``--data`` is given),
each session planted ``--plantings`` ways with one unscanned item (``planted_sessions``),
and collects every flag's margin and whether it is the planted item. Then, for the
logistic of the margin (``uncalibrated``), the shipped ``FLAG_CALIBRATION`` and each
``--calibration`` given, it prints how often the flags of each confidence bin were real,
the Brier score and the log loss. ``--fit`` fits the calibration on these flags
(``fit_calibration``) and prints it, ready for ``--calibration`` or ``FLAG_CALIBRATION``.
``--naming`` reads the trips as a model pair's answers are read: the candidate moves from
``--answers``, whether each moved an item from both, and each move's product from the
given answers (all members' geometric mean, ``reconcile_decode --average-with --geometric
--keep-average``).

Fit on validation trips; check on held-out ones, which then chose nothing:

    python -m app.bench.flag_calibration --answers VAL_ANSWERS --data VAL20 --fit
    python -m app.bench.flag_calibration --answers TEST_ANSWERS --data REC20
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from app.bench.cart_view import session_cells
from app.bench.identify_fusion import kept_answers
from app.bench.reconcile_decode import flag_rates, planted_sessions, with_naming
from app.reconcile.flag_confidence import (
    FLAG_CALIBRATION,
    UNCALIBRATED,
    FlagCalibration,
    fit_calibration,
    flag_confidence,
    reliability,
)
from app.reconcile.trip import read_trip
from model.synth.reader import read_dataset


def trip_flags(
    sessions: Sequence[dict[str, Any]],
    cells: Mapping[str, np.ndarray] | None,
    plantings: int,
) -> tuple[list[tuple[float, bool]], list[list[bool]]]:
    """Every flag of every planting of every session as (margin, real), and per trip of
    the first planting whether each of its flags is real (for ``flag_rates``)."""
    flags: list[tuple[float, bool]] = []
    first: list[list[bool]] = []
    for seed in range(plantings):
        for session, planted, scans in planted_sessions(list(sessions), seed):
            band = None if cells is None else cells[session["video_id"]]
            reading = read_trip(session["steps"], scans, band, calibration=UNCALIBRATED)
            real = [d.sku == planted and d.expected > d.scanned for d in reading.discrepancies]
            flags += [
                (d.margin or 0.0, r) for d, r in zip(reading.discrepancies, real, strict=True)
            ]
            if seed == 0:
                first.append(real)
    return flags, first


def plot(tables: Mapping[str, dict[str, Any]], path: Path, title: str) -> None:
    """A reliability diagram: per calibration, each bin's share of real flags against its
    mean confidence (a point's area: its flags); a calibrated flag lies on the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
    for name, table in tables.items():
        bins = table["bins"]
        x = [b["mean_confidence"] for b in bins]
        y = [b["real"] for b in bins]
        brier = table["brier"]
        label = name if brier is None else f"{name} (Brier {brier:.3f})"
        ax.plot(x, y, marker="o", linewidth=1, label=label)
        ax.scatter(x, y, s=[4 * b["flags"] for b in bins], alpha=0.3)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="flag confidence",
        ylabel="share of flags real",
        title=title,
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def calibration_from_json(text: str) -> FlagCalibration:
    """``{"intercept": A, "slope": B}`` as ``--fit`` prints it; a ``ValueError`` that says
    what is wrong otherwise."""
    try:
        raw = json.loads(text)
        calibration = FlagCalibration(float(raw["intercept"]), float(raw["slope"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f'a calibration is {{"intercept": A, "slope": B}} in JSON: {error}'
        ) from error
    if not (math.isfinite(calibration.intercept) and math.isfinite(calibration.slope)):
        raise ValueError("a calibration's intercept and slope must be finite")
    return calibration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=Path, required=True, help="kept by reconcile_decode")
    parser.add_argument(
        "--data", type=Path, default=None, help="the answers' dataset: read its cart band too"
    )
    parser.add_argument(
        "--naming",
        type=Path,
        default=None,
        help="answers of the same sessions that name and weigh the moves, as a model pair's "
        "do (reconcile_decode --average-with --geometric --keep-average)",
    )
    parser.add_argument("--plantings", type=int, default=5, help="plantings of each session")
    parser.add_argument("--sessions", type=int, default=None, help="only the first N")
    parser.add_argument("--fit", action="store_true", help="fit a calibration on these flags")
    parser.add_argument(
        "--plot", type=Path, default=None, help="draw the reliability of each calibration here"
    )
    parser.add_argument(
        "--calibration",
        action="append",
        default=[],
        help='another calibration to check, {"intercept": A, "slope": B} (repeatable)',
    )
    args = parser.parse_args(argv)
    try:
        if args.plantings < 1:
            raise ValueError("--plantings must be 1 or more")
        checked = [calibration_from_json(text) for text in args.calibration]
        sessions = kept_answers(args.answers, args.sessions, with_boxes=False)
        if args.naming is not None:
            naming = kept_answers(args.naming, args.sessions, with_boxes=False)
            sessions = with_naming(sessions, naming)
        cells = None
        if args.data is not None:
            dataset = read_dataset(args.data)
            cells = {s["video_id"]: session_cells(dataset, s) for s in sessions}
        flags, first = trip_flags(sessions, cells, args.plantings)
        print(
            json.dumps(
                {"plantings": args.plantings, "band": cells is not None, **flag_rates(first)}
            )
        )
        named = {"uncalibrated": UNCALIBRATED, "shipped": FLAG_CALIBRATION}
        named |= {f"given {i + 1}": c for i, c in enumerate(checked)}
        if args.fit:
            named["fitted"] = fit_calibration([m for m, _ in flags], [r for _, r in flags])
    except ValueError as error:
        parser.error(str(error))
    real = [r for _, r in flags]
    tables = {}
    for name, calibration in named.items():
        confidences = [flag_confidence(m, calibration) for m, _ in flags]
        tables[name] = reliability(confidences, real)
        print(json.dumps({"name": name, **asdict(calibration), **tables[name]}))
    if args.plot is not None:
        plot(tables, args.plot, f"{args.answers.name}, {args.plantings} plantings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
