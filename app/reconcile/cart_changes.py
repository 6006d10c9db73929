"""Whether a handling changed what lies in the cart, read from the cart band's cells.

The per-step answers know that a hand moved an item but often not where to (most of a
trip's false flags are a return read as a put), so a candidate move that left the cart band
(``app.video.cart_band``) unchanged is probably not a cart move.

A candidate's change compares the frames of ``WINDOW`` steps before its run with those of
``WINDOW`` steps from its end: each cell at the closest pair of frames, one before and one
after, because the arm that reaches from below the frame crosses the band and covers some
cells in some frames, not the same cells in all. The change is the largest cell's, as a
share of the band's mean brightness (noise and the wire floor's flicker stay near 0.02; a
product that appears or disappears, 0.1 to 0.9).

Where the band changed and the answers' path has no candidate near (``cart_events``,
``event_candidates``), the handling was missed by the answers, so the change becomes a
candidate of each direction; ``cart_candidates`` gives both kinds with their changes, for
``move_odds.log_odds``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.reconcile.episodes import (
    SETTINGS,
    Candidate,
    Settings,
    episode_candidates,
    product_answers,
    run_candidate,
)
from app.reconcile.moves import Moment

#: steps read on each side of a candidate's run
WINDOW = 6
#: steps read on each side of one step, to find where the band changed without a candidate
EVENT_WINDOW = 4
#: a step's change from which the band is read as changed there: above the noise (~0.02)
#: and the arm's crossings that the closest pair leaves, below most items (0.1 to 0.9)
EVENT_CHANGE = 0.15
#: steps between a change of the band and a candidate that still explain each other
SLACK = 2


def pair_differences(
    track: np.ndarray, start: int, end: int, window: int = WINDOW
) -> np.ndarray | None:
    """``(B, A, ...)``: the mean difference over colours of every pair of one of the
    ``window`` frames of ``track`` ``(L, ..., 3)`` before ``start`` and one of the
    ``window`` from ``end``; None where one side has no frame (a run at the very start or
    end of the video)."""
    before = track[max(0, start - window) : max(0, start)]
    after = track[min(len(track), end) : min(len(track), end + window)]
    if len(before) == 0 or len(after) == 0:
        return None
    return np.abs(before[:, None] - after[None]).mean(axis=-1)


def cart_change(cells: np.ndarray, start: int, end: int, window: int = WINDOW) -> float:
    """How much the cart band differs after steps ``[start, end)`` from before them: the
    largest cell's difference at its closest pair of frames (``pair_differences``); 0 where
    one side has no frame."""
    pairs = pair_differences(cells, start, end, window)  # (B, A, h, w)
    return 0.0 if pairs is None else float(pairs.min(axis=(0, 1)).max())


def moment_changes(
    cells: np.ndarray, moments: Sequence[Moment], window: int = WINDOW
) -> np.ndarray:
    """``(N,)`` each moment's ``cart_change`` over its own steps."""
    return np.array([cart_change(cells, m.start, m.end, window) for m in moments])


def cart_events(
    cells: np.ndarray, window: int = EVENT_WINDOW, threshold: float = EVENT_CHANGE
) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of steps across which the band changed: step ``t``
    where ``cart_change`` between the ``window`` steps up to it and those after it reaches
    ``threshold``."""
    changed = [cart_change(cells, t, t + 1, window) >= threshold for t in range(len(cells))]
    runs: list[tuple[int, int]] = []
    for t, on in enumerate(changed):
        if on and runs and runs[-1][1] == t:
            runs[-1] = (runs[-1][0], t + 1)
        elif on:
            runs.append((t, t + 1))
    return runs


def event_candidates(
    steps: Mapping[str, Mapping[str, Any]],
    events: Sequence[tuple[int, int]],
    moments: Sequence[Moment],
    slack: int = SLACK,
) -> list[Candidate]:
    """Candidates where the band changed and no candidate of ``moments`` lies within
    ``slack`` steps: the handlings the answers' path missed. Each change may be a put or a
    take-out (the band does not say which), so each gives both, with each product's peak
    answer over the run and the odds of ``episodes.episode_candidates`` (the
    strongest cart answer against its shelf mirror's); none is counted by the path."""
    if not steps:
        return []
    per_product = product_answers(steps)
    length = min(v.shape[1] for v in per_product.values())
    out = []
    for start, end in events:
        end = min(end, length)  # the video may run a step longer than the answers
        if start >= end or any(m.start <= end + slack and m.end >= start - slack for m in moments):
            continue
        out += [run_candidate(per_product, change, start, end, False) for change in (+1, -1)]
    return out


def cart_candidates(
    steps: Mapping[str, Mapping[str, Any]], cells: np.ndarray, settings: Settings = SETTINGS
) -> tuple[list[Candidate], np.ndarray]:
    """The path's candidates (``episode_candidates``) and those of the band's changes that
    none explains (``event_candidates``), with each one's ``cart_change`` ``(N,)``."""
    candidates = episode_candidates(steps, settings)
    candidates += event_candidates(steps, cart_events(cells), [c.moment for c in candidates])
    return candidates, moment_changes(cells, [c.moment for c in candidates])
