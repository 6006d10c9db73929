"""The cart band of a cart camera's frames, in cells: what reconciliation reads to tell
whether a handling changed what lies in the cart.

The camera rides on the cart, so the bottom band of every frame shows the cart itself,
still in the frame while the shelves pan past above it: an item put in appears there and
stays, one taken out disappears, a return to the shelf leaves it as it was. The band is
kept in cells (``CELL`` pixels a side) of each frame divided by its band's mean brightness,
since lighting drift and flicker scale the whole frame; a frame's cells depend on that
frame alone, so the ingest worker keeps them per memory step as it writes the memory
(``app.reconcile.cart_changes`` reads them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: where the cart band starts, as a share of the frame height from the top: the synthetic
#: store's camera shows shelves above 72 % of the frame (``model.synth.scene``); a real
#: camera's mounting decides it
CART_TOP = 0.72
#: pixels left out below the band's top edge, where the shelf's bottom plank can bleed in
TOP_MARGIN = 2
#: a cell's side in pixels: smaller than an item lying in the cart, larger than the noise
CELL = 8
#: the name the ingest worker stores a session's cells under, beside its memory's arrays
ARRAY_NAME = "cart_cells"
#: what the ingest worker keeps cells in: shares near 1 to three digits, finer than any
#: change the readings tell apart (noise 0.02, a change 0.15), at a quarter of float64's
#: bytes (a 24 x 4 cell band: 576 bytes a memory step)
KEPT_DTYPE = np.float16


def band_top(height: int, top: float = CART_TOP) -> int:
    """The first pixel row of the cart band in a frame ``height`` pixels tall."""
    return round(top * height) + TOP_MARGIN


def cart_band(
    frames: Sequence[np.ndarray] | np.ndarray, top: float = CART_TOP, dtype: type = np.float64
) -> np.ndarray:
    """``(L, H, W, 3)``: each frame's cart band as shares of its mean brightness (lighting
    drift and flicker scale the whole frame)."""
    band: np.ndarray = np.stack([f[band_top(f.shape[0], top) :] for f in frames]).astype(dtype)
    band /= band.mean(axis=(1, 2, 3), keepdims=True) + 1e-9
    return band


def cart_cells(
    frames: Sequence[np.ndarray] | np.ndarray, top: float = CART_TOP, cell: int = CELL
) -> np.ndarray:
    """``(L, h, w, 3)``: ``cart_band`` in cells of ``cell`` pixels."""
    if len(frames) == 0:
        return np.zeros((0, 0, 0, 3))
    band = cart_band(frames, top)
    count, height, width, channels = band.shape
    rows, columns = height // cell, width // cell
    if rows == 0 or columns == 0:
        raise ValueError(f"the cart band ({height} x {width} pixels) is smaller than a cell")
    cropped = band[:, : rows * cell, : columns * cell]
    return cropped.reshape(count, rows, cell, columns, cell, channels).mean(axis=(2, 4))


def kept_cells(clip: np.ndarray, top: float = CART_TOP, cell: int = CELL) -> np.ndarray | None:
    """``(T, h, w, 3)`` ``cart_cells`` of a clip's frames ``(T, H, W, 3)`` as the ingest
    worker keeps them (``KEPT_DTYPE``); None where the band holds no whole cell (frames
    too small, or ``top`` 1: no band)."""
    height, width = clip.shape[1:3]
    if height - band_top(height, top) < cell or width < cell:
        return None
    return cart_cells(clip, top, cell).astype(KEPT_DTYPE)
