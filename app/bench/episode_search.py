"""The settings of the episode reading, searched on a tuning set's kept answers.

``episode_moments`` reads cart moves as whole handlings with two kinds of setting: the nats
a path pays to change state (``switch``) and the nats each activity gets against idle
(``bias``). This chooses them the way the shipped ones were chosen: a coordinate search
that tries each value of a grid for one setting at a time, the others held, and keeps the
one with the fewest moment errors (annotated moves missed plus moves counted where none
was, matched as ``reading_limits`` matches them), over as many rounds as asked. Every
setting tried is printed as a JSON line, the chosen one last.

Tuning sets only: what it chooses is judged elsewhere.

    python -m app.bench.reconcile_decode --data TUNE --split val --checkpoint RUN --answers A
    python -m app.bench.episode_search --answers A [--switch 0.1,0.25,0.5,1]
        [--bias 1,1.5,2,2.5,3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.bench.identify_fusion import kept_answers
from app.bench.move_matching import MOVES, matched_moves
from app.reconcile.episodes import SETTINGS, Settings, episode_moments


@dataclass(frozen=True)
class MomentErrors:
    """Moves over some sessions: annotated ones found and missed, counted ones spurious."""

    found: int
    missed: int
    spurious: int

    @property
    def errors(self) -> int:
        return self.missed + self.spurious


def moment_errors(sessions: Sequence[dict[str, Any]], settings: Settings) -> MomentErrors:
    """How the episode reading with ``settings`` finds the annotated moves of ``sessions``."""
    found = missed = spurious = 0
    for session in sessions:
        match = matched_moves(session, episode_moments(session["steps"], settings))
        annotated = sum(activity in MOVES for activity, *_ in session["spans"])
        hits = sum(j is not None for j in match)
        found += hits
        missed += annotated - hits
        spurious += len(match) - hits
    return MomentErrors(found, missed, spurious)


def _with(settings: Settings, name: str, value: float) -> Settings:
    if name == "switch":
        return replace(settings, switch=value)
    return replace(settings, bias={**settings.bias, name: value})


def search(
    sessions: Sequence[dict[str, Any]],
    switches: Sequence[float],
    biases: Sequence[float],
    rounds: int,
    start: Settings = SETTINGS,
) -> tuple[Settings, list[tuple[Settings, MomentErrors]]]:
    """The settings with the fewest moment errors that a coordinate search from ``start``
    reaches (a tie keeps the setting held), and every setting tried with its errors."""
    tried: dict[str, tuple[Settings, MomentErrors]] = {}

    def errors(settings: Settings) -> MomentErrors:
        key = json.dumps(_as_json(settings), sort_keys=True)
        if key not in tried:
            tried[key] = (settings, moment_errors(sessions, settings))
        return tried[key][1]

    best = start
    for _ in range(rounds):
        for name in ("switch", *start.bias):
            grid = switches if name == "switch" else biases
            for value in grid:
                candidate = _with(best, name, value)
                if errors(candidate).errors < errors(best).errors:
                    best = candidate
    return best, list(tried.values())


def _as_json(settings: Settings) -> dict[str, Any]:
    return {"switch": settings.switch, "bias": dict(settings.bias)}


def _arrays(session: dict[str, Any]) -> dict[str, Any]:
    """``session`` with its per-step answers as arrays, read once instead of per setting."""
    steps = {
        sku: {k: v if k == "fps" else np.asarray(v, dtype=np.float64) for k, v in answers.items()}
        for sku, answers in session["steps"].items()
    }
    return {**session, "steps": steps}


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=Path, required=True, help="kept by reconcile_decode")
    parser.add_argument("--switch", default="0.1,0.25,0.5,1", help="comma-separated nats")
    parser.add_argument("--bias", default="1,1.5,2,2.5,3", help="comma-separated nats")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=None, help="only the first N")
    args = parser.parse_args(argv)
    try:
        sessions = [_arrays(s) for s in kept_answers(args.answers, args.sessions, with_boxes=False)]
        switches, biases = _floats(args.switch), _floats(args.bias)
    except ValueError as error:
        parser.error(str(error))
    if args.rounds < 1:
        parser.error("--rounds must be at least 1.")
    best, tried = search(sessions, switches, biases, args.rounds)
    for settings, errors in tried:
        print(json.dumps({**_as_json(settings), **vars(errors), "errors": errors.errors}))
    chosen = next(errors for settings, errors in tried if settings == best)
    print(json.dumps({"chosen": _as_json(best), **vars(chosen), "errors": chosen.errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
