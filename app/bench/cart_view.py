"""Whether a handling changed what lies in the cart, read from the cart band of the frames.

The camera rides on the cart, so the bottom band of every frame shows the cart itself,
still in the frame while the shelves pan past above it. An item put in appears there and
stays; one taken out disappears; a return to the shelf leaves the band as it was. The
per-step answers know that a hand moved an item but often not where to (most of a trip's
false flags are a return read as a put), so a candidate move that left the band unchanged
is probably not a cart move.

The band is read in cells (``CELL`` pixels a side, each frame divided by its band's mean
brightness, since lighting drift and flicker scale the whole frame). A candidate's change
compares the frames of ``WINDOW`` steps before its run with those of ``WINDOW`` steps from
its end: each cell at the closest pair of frames, one before and one after, because the
arm that reaches from below the frame crosses the band and covers some cells in some
frames, not the same cells in all. The change is the largest cell's, as a share of the
band's mean brightness (noise and the wire floor's flicker stay near 0.02; a product that
appears or disappears, 0.1 to 0.9).

Where the band changed and the answers' path has no candidate near (``cart_events``,
``event_candidates``), the handling was missed by the answers, so the change becomes a
candidate of each direction; ``cart_candidates`` gives both kinds with their changes, for
``candidate_odds`` and ``reading_limits --data``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.bench.episode_moments import (
    SETTINGS,
    Candidate,
    Settings,
    episode_candidates,
    product_answers,
    run_candidate,
)
from app.bench.scan_repair import Moment
from model.synth.reader import Dataset
from model.synth.video_io import iter_video_frames

#: where the cart band starts, as a share of the frame height from the top: the synthetic
#: store's camera shows shelves above 72 % of the frame (``model.synth.scene``); a real
#: camera's mounting decides it
CART_TOP = 0.72
#: pixels left out below the band's top edge, where the shelf's bottom plank can bleed in
TOP_MARGIN = 2
#: a cell's side in pixels: smaller than an item lying in the cart, larger than the noise
CELL = 8
#: steps read on each side of a candidate's run
WINDOW = 6
#: steps read on each side of one step, to find where the band changed without a candidate
EVENT_WINDOW = 4
#: a step's change from which the band is read as changed there: above the noise (~0.02)
#: and the arm's crossings that the closest pair leaves, below most items (0.1 to 0.9)
EVENT_CHANGE = 0.15
#: steps between a change of the band and a candidate that still explain each other
SLACK = 2


def band_top(height: int, top: float = CART_TOP) -> int:
    """The first pixel row of the cart band in a frame ``height`` pixels tall."""
    return round(top * height) + TOP_MARGIN


def cart_band(
    frames: Sequence[np.ndarray], top: float = CART_TOP, dtype: type = np.float64
) -> np.ndarray:
    """``(L, H, W, 3)``: each frame's cart band as shares of its mean brightness (lighting
    drift and flicker scale the whole frame)."""
    band: np.ndarray = np.stack([f[band_top(f.shape[0], top) :] for f in frames]).astype(dtype)
    band /= band.mean(axis=(1, 2, 3), keepdims=True) + 1e-9
    return band


def cart_cells(frames: Sequence[np.ndarray], top: float = CART_TOP, cell: int = CELL) -> np.ndarray:
    """``(L, h, w, 3)``: ``cart_band`` in cells of ``cell`` pixels."""
    if not frames:
        return np.zeros((0, 0, 0, 3))
    band = cart_band(frames, top)
    count, height, width, channels = band.shape
    rows, columns = height // cell, width // cell
    if rows == 0 or columns == 0:
        raise ValueError(f"the cart band ({height} x {width} pixels) is smaller than a cell")
    cropped = band[:, : rows * cell, : columns * cell]
    return cropped.reshape(count, rows, cell, columns, cell, channels).mean(axis=(2, 4))


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


def session_frames(dataset: Dataset, session: dict[str, Any]) -> list[np.ndarray]:
    """A kept session's video, one frame per step of its answers."""
    fps = float(next(iter(session["steps"].values()))["fps"])
    return list(iter_video_frames(dataset.video_path(session["video_id"]), fps))


def session_cells(dataset: Dataset, session: dict[str, Any]) -> np.ndarray:
    """``cart_cells`` of a kept session's video, one frame per step of its answers."""
    return cart_cells(session_frames(dataset, session))


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
    answer over the run and the odds of ``episode_moments.episode_candidates`` (the
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
