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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

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


def cart_cells(frames: Sequence[np.ndarray], top: float = CART_TOP, cell: int = CELL) -> np.ndarray:
    """``(L, h, w, 3)``: each frame's cart band ``(H, W, 3)`` in cells of ``cell`` pixels,
    as shares of the band's mean brightness."""
    if not frames:
        return np.zeros((0, 0, 0, 3))
    first = round(top * frames[0].shape[0]) + TOP_MARGIN
    band = np.stack([f[first:] for f in frames]).astype(np.float64)  # (L, Hb, W, 3)
    count, height, width, channels = band.shape
    rows, columns = height // cell, width // cell
    if rows == 0 or columns == 0:
        raise ValueError(f"the cart band ({height} x {width} pixels) is smaller than a cell")
    band /= band.mean(axis=(1, 2, 3), keepdims=True) + 1e-9
    cropped = band[:, : rows * cell, : columns * cell]
    return cropped.reshape(count, rows, cell, columns, cell, channels).mean(axis=(2, 4))


def cart_change(cells: np.ndarray, start: int, end: int, window: int = WINDOW) -> float:
    """How much the cart band differs after steps ``[start, end)`` from before them: the
    largest cell's difference at its closest pair of frames (one of the ``window`` steps
    before ``start``, one of the ``window`` steps from ``end``). 0 where one side has no
    frame (a run at the very start or end of the video)."""
    before = cells[max(0, start - window) : max(0, start)]
    after = cells[min(len(cells), end) : min(len(cells), end + window)]
    if len(before) == 0 or len(after) == 0:
        return 0.0
    pairs = np.abs(before[:, None] - after[None]).mean(axis=-1)  # (B, A, h, w)
    return float(pairs.min(axis=(0, 1)).max())


def moment_changes(
    cells: np.ndarray, moments: Sequence[Moment], window: int = WINDOW
) -> np.ndarray:
    """``(N,)`` each moment's ``cart_change`` over its own steps."""
    return np.array([cart_change(cells, m.start, m.end, window) for m in moments])


def session_cells(dataset: Dataset, session: dict[str, Any]) -> np.ndarray:
    """``cart_cells`` of a kept session's video, one frame per step of its answers."""
    fps = float(next(iter(session["steps"].values()))["fps"])
    return cart_cells(list(iter_video_frames(dataset.video_path(session["video_id"]), fps)))
