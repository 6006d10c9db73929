"""Catalog pictures shown the way video shows a product, for the product match's prototypes.

Backbone pretraining (``model.train.pretrain_backbone``) matches every frame token against
its store's catalog pictures passed through the same backbone. With the clean pictures as
prototypes, each step shows the same 24 images per store, and the backbone can learn those
pictures' identities instead of what makes a filmed product look like its picture. Seen
through these views instead (turned, moved and scaled a little, lit and tinted like the
store, blurred as motion blurs, part of it under a hand-coloured block), the prototype
changes at every step while the product stays the same: what is left to learn is the match.
Measured in docs/RESULTS.md ("Prototypes seen as video sees them").
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

#: A hand covers this share of the picture's side at most (a block, half the time).
MAX_COVER = 0.5
#: Skin-like colours the covering block is drawn between (RGB, darkest and lightest).
_SKIN = (np.array([70, 40, 25]), np.array([235, 190, 160]))


def prototype_views(pictures: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view of each catalog picture: ``(K, s, s, 3)`` uint8 in, the same out."""
    return np.stack([_view(picture, rng) for picture in pictures])


def _view(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = picture.shape[0]
    background = tuple(int(c) for c in picture[0, 0])  # the picture's plain backdrop
    angle = float(rng.uniform(-20, 20))
    shift = (float(rng.uniform(-0.08, 0.08) * size), float(rng.uniform(-0.08, 0.08) * size))
    image = Image.fromarray(picture).rotate(
        angle,
        Image.Resampling.BILINEAR,
        translate=shift,  # type: ignore[arg-type]  # PIL's affine takes sub-pixel shifts too
        fillcolor=background,
    )
    scale = float(rng.uniform(0.8, 1.1))
    side = max(2, round(size * scale))
    scaled = image.resize((side, side), Image.Resampling.BILINEAR)
    image = Image.new("RGB", (size, size), background)
    offset = (size - side) // 2
    if side <= size:
        image.paste(scaled, (offset, offset))
    else:  # larger: keep the middle
        image = scaled.crop((-offset, -offset, -offset + size, -offset + size))
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.1, 1.2))))
    gain = rng.uniform(0.85, 1.15, size=3) * rng.uniform(0.6, 1.2)  # tint, then light
    out = np.asarray(image, dtype=np.float32) * gain
    if rng.random() < 0.5:
        h, w = (int(rng.integers(size // 5, int(size * MAX_COVER))) for _ in range(2))
        y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        out[y : y + h, x : x + w] = _SKIN[0] + rng.random() * (_SKIN[1] - _SKIN[0])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
