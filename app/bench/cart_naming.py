"""Which product a cart move moved, read from where the cart band changed.

An item put in lies still in the cart afterwards, and one taken out lay there before, so
the band shows the moved product at rest, away from the hand, in the frames on one side of
the move. This finds the pixels that changed across a candidate (each pixel at its closest
pair of frames, one before and one after, as ``cart_view`` reads cells), cuts a square
around them from the per-pixel median of the frames on the side where the item lies (the
median drops an arm that crosses in some of them), and matches the store's catalog
pictures to it as templates (``model.evaluate.crop_match.template_scores``), each turned a
little either way since items lie tilted in the cart. Its votes are the log-softmax of
the best fits at ``TEMPERATURE``, as ``identify_fusion``'s are; ``reading_limits
--cart-naming W`` adds ``W`` times them to each candidate's log answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import uniform_filter

from app.bench.identify_fusion import TEMPERATURE, catalog_pictures
from app.reconcile.cart_changes import WINDOW, cart_candidates, pair_differences
from app.reconcile.episodes import SETTINGS, Settings
from app.reconcile.moves import Moment
from app.video.cart_band import band_top, cart_band
from model.evaluate.crop_match import CROP_SIZE, square_crop, template_scores
from model.synth.reader import Dataset

#: degrees each catalog picture is turned to, as items lie in the cart (up to 25 degrees)
ANGLES = (-20.0, 0.0, 20.0)
#: a pixel changed where its change reaches this share of the strongest change
CHANGED = 0.5
#: pixels around the strongest change that may belong to the moved item (an item is ~30)
REACH = 24
#: pixels a side of the box the per-pixel change is smoothed over (the noise is per pixel)
SMOOTH = 5


def changed_box(
    band: np.ndarray, start: int, end: int, window: int = WINDOW
) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` in the band of the pixels that changed most across steps
    ``[start, end)`` (near the strongest), from ``band`` ``(L, H, W, 3)`` (each frame a
    share of its band's brightness); None where one side has no frame."""
    pairs = pair_differences(band, start, end, window)  # (B, A, H, W)
    if pairs is None:
        return None
    change = uniform_filter(pairs, size=(1, 1, SMOOTH, SMOOTH)).min(axis=(0, 1))  # (H, W)
    cy, cx = np.unravel_index(int(change.argmax()), change.shape)
    ys, xs = np.nonzero(change >= CHANGED * change.max())
    near = (np.abs(ys - cy) < REACH) & (np.abs(xs - cx) < REACH)
    ys, xs = ys[near], xs[near]
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def moment_crops(
    frames: Sequence[np.ndarray], moments: Sequence[Moment], window: int = WINDOW
) -> np.ndarray:
    """``(N, CROP_SIZE, CROP_SIZE, 3)`` uint8: per moment, the square around where the band
    changed, from the median of the frames after a put or before a take-out (all zeros
    where the band cannot be read there)."""
    out = np.zeros((len(moments), CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    if not frames:
        return out
    height, width = frames[0].shape[:2]
    top = band_top(height)
    band = cart_band(frames, dtype=np.float32)  # (L, H, W, 3)
    for i, m in enumerate(moments):
        found = changed_box(band, m.start, m.end, window)
        if found is None:
            continue
        y0, y1, x0, x1 = found
        side = range(m.end, m.end + window) if m.change > 0 else range(m.start - window, m.start)
        still = [frames[t] for t in side if 0 <= t < len(frames)]
        if not still:
            continue
        median = np.median(np.stack(still), axis=0).astype(np.uint8)
        box = ((x0 + x1) / 2 / width, (top + (y0 + y1) / 2) / height)
        size = ((x1 - x0) / width, (y1 - y0) / height)
        out[i] = square_crop(median, (*box, *size), CROP_SIZE)
    return out


def turned(pictures: np.ndarray, angle: float) -> np.ndarray:
    """``pictures`` ``(P, s, s, 3)`` turned by ``angle`` degrees, on their own background."""
    if angle == 0:
        return pictures
    return np.stack(
        [
            np.asarray(
                Image.fromarray(p).rotate(
                    angle,
                    resample=Image.Resampling.BILINEAR,
                    fillcolor=tuple(int(v) for v in p[0, 0]),
                )
            )
            for p in pictures
        ]
    )


def crop_votes(crops: np.ndarray, pictures: np.ndarray) -> np.ndarray:
    """``(N, P)``: each crop's log-softmax over the pictures of their best fit at any of
    ``ANGLES``."""
    if len(crops) == 0:
        return np.zeros((0, len(pictures)))
    images = torch.from_numpy(np.ascontiguousarray(crops))
    best = torch.stack([template_scores(images, turned(pictures, a)) for a in ANGLES]).amax(0)
    return (best / TEMPERATURE).log_softmax(-1).numpy().astype(np.float64)


def candidate_votes(
    dataset: Dataset,
    session: dict[str, Any],
    frames: Sequence[np.ndarray],
    cells: np.ndarray,
    settings: Settings = SETTINGS,
) -> np.ndarray:
    """``(N, P)``: the votes of each of the session's ``cart_view.cart_candidates`` (in its
    order) over the store's products (the answers' order)."""
    candidates, _ = cart_candidates(session["steps"], cells, settings)
    crops = moment_crops(frames, [c.moment for c in candidates])
    return crop_votes(crops, catalog_pictures(dataset, list(session["steps"])))
