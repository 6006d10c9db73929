"""Catalog products pasted into store frames, the way a hand holds them in video.

Backbone pretraining (``model.train.pretrain_backbone``) adds these to every batch so that
a product looks alike in its catalog image (the query's object image) and in a frame, and
so that product identity has far more examples than the training videos hold.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from model.data.handled import MIN_OVERLAP, box_cells


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` → ``(size, size, 3)`` with the backbone's resampling."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def cutout(product: np.ndarray) -> np.ndarray:
    """A catalog image ``(H, W, 3)`` as RGBA cropped to the product: the plain background
    (the corner's colour) becomes transparent."""
    distance = np.abs(product.astype(np.int16) - product[0, 0].astype(np.int16)).sum(-1)
    alpha = distance > 24
    rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
    rgba = np.dstack([product, alpha.astype(np.uint8) * 255])
    return rgba[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] if len(rows) else rgba


def composite(
    background: np.ndarray, product: np.ndarray, rng: np.random.Generator, grid: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """A catalog product on ``background`` and the cells it covers ``(S,)`` bool.

    Mostly as a hand holds it in video (a cut-out at the annotated boxes' sizes, turned and
    tilted, anywhere in the frame); a fifth of the time the catalog image itself (the
    query's object image), whose cells are left unlabelled (``None``).
    """
    size = background.shape[0]
    if rng.random() < 0.2:
        return resize(product, size), None
    piece = Image.fromarray(cutout(product), "RGBA")
    height = int(rng.uniform(0.17, 0.6) * size)
    width = max(3, int(height * piece.width / piece.height * rng.uniform(0.35, 1.0)))
    piece = piece.resize((width, height), Image.Resampling.BILINEAR)
    piece = piece.rotate(float(rng.uniform(-40, 40)), Image.Resampling.BILINEAR, expand=True)
    x = int(rng.integers(-piece.width // 4, size - 3 * piece.width // 4 + 1))
    y = int(rng.integers(-piece.height // 4, size - 3 * piece.height // 4 + 1))
    image = Image.fromarray(background)
    image.paste(piece, (x, y), piece)
    # the box of the product's pixels inside the frame (the faint rim left out): a tilted
    # product cut by the frame's edge covers less than its box cut by that edge
    opaque = Image.new("L", (size, size))
    opaque.paste(piece.getchannel("A").point(lambda a: 255 if a >= 64 else 0), (x, y))
    x0, y0, x1, y1 = opaque.getbbox() or (0, 0, 1, 1)
    box = ((x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size)
    cells = np.zeros(grid[0] * grid[1], dtype=bool)
    cells[box_cells(box, grid, MIN_OVERLAP)] = True
    return np.asarray(image), cells
