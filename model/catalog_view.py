"""How a catalog image is shown to the backbone: whole, or its product tiled at video size.

A catalog image shows one product filling the picture (the synthetic catalog: 86 % of its
height); a cart camera shows it at a third of the frame's height (median of the annotated
boxes; 17-56 % from the 10th to the 90th percentile) and squeezed to the frame's aspect.
A small CNN's tokens are not scale invariant, so matching a video token against the tokens
of the whole picture compares a product with a close-up of itself. ``tiles = n`` cuts the
product out of its plain background and draws it ``n x n`` times on that background, each
copy the size a hand shows it at, so every token of the picture sees the product the way
a video token does. ``tiles = 1`` is the picture as it is (the paper's object image).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def catalog_view(image: np.ndarray, tiles: int, squeeze: float = 0.75) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` → the same shape, its product drawn ``tiles x tiles`` times.

    ``squeeze`` narrows each copy as the video's frames are narrowed on their way to the
    backbone's square input (a 4:3 frame on a square: 0.75).
    """
    if tiles <= 1:
        return image
    h, w = image.shape[:2]
    plain = image[0, 0]
    inked = np.abs(image.astype(np.int16) - plain.astype(np.int16)).sum(-1) > 24  # (H, W)
    rows, cols = np.flatnonzero(inked.any(1)), np.flatnonzero(inked.any(0))
    if not len(rows):
        return image
    product = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    mask = inked[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    cell_h, cell_w = h // tiles, w // tiles
    scale = 0.9 * min(cell_h / product.shape[0], cell_w / (product.shape[1] * squeeze))
    ph = max(1, round(product.shape[0] * scale))
    pw = max(1, round(product.shape[1] * scale * squeeze))
    small, alpha = _resize(product, mask, ph, pw)
    out = np.empty_like(image)
    out[:] = plain
    for r in range(tiles):
        for c in range(tiles):
            y, x = r * cell_h + (cell_h - ph) // 2, c * cell_w + (cell_w - pw) // 2
            patch = out[y : y + ph, x : x + pw]
            patch[:] = np.where(alpha[..., None], small, patch)
    return out


def _resize(
    product: np.ndarray, mask: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The product's pixels ``(height, width, 3)`` uint8 and where it is opaque (bool)."""
    x = torch.from_numpy(np.ascontiguousarray(product)).permute(2, 0, 1)[None].float()
    m = torch.from_numpy(np.ascontiguousarray(mask))[None, None].float()
    size = (height, width)
    pixels = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    alpha = F.interpolate(m, size=size, mode="bilinear", antialias=True, align_corners=False)
    rgb = pixels[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    return rgb, alpha[0, 0].numpy() >= 0.5
