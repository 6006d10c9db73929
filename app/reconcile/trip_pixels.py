"""The pixels a trip's reading names moves with: the evidence thumbnails ingest kept, as one
frame per memory step, and the catalog's pictures at the crops' size.

Ingest keeps a thumbnail every few memory steps (``app.ingest.thumbnails``: one a second,
thinned to every other one past its bounds, so one every two steps on a 20-minute trip), so
a step without its own shows the latest one before it. Naming reads the band's crops from
them (``cart_naming``); measured on the tuning trips as thumbnails give them, at their own
160 px JPEG, against the video's frames (docs/RESULTS.md).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from app.video.timeline import sample_time_us
from model.evaluate.crop_match import CROP_SIZE, picture_at
from storage.evidence import Thumbnail


def step_frames(thumbnails: Sequence[Thumbnail], fps: float, steps: int) -> list[np.ndarray] | None:
    """``steps`` frames ``(H, W, 3)``, one per memory step from 0: the latest thumbnail at
    or before the step's time (the first where none is); None without a readable one."""
    decoded: list[tuple[int, np.ndarray]] = []
    for thumb in sorted(thumbnails, key=lambda t: t.time_us):
        picture = _decoded(thumb.data)
        if picture is not None and (not decoded or picture.shape == decoded[0][1].shape):
            decoded.append((thumb.time_us, picture))
    if not decoded:
        return None
    frames, k = [], 0
    for step in range(steps):
        at = sample_time_us(step, fps)
        while k + 1 < len(decoded) and decoded[k + 1][0] <= at:
            k += 1
        frames.append(decoded[k][1])
    return frames


def catalog_pictures(images: Mapping[str, bytes], skus: Sequence[str]) -> np.ndarray | None:
    """``(P, s, s, 3)`` the products' catalog pictures at the crops' size, in ``skus``
    order; None where one is missing or unreadable (the votes would name the wrong ones)."""
    pictures = []
    for sku in skus:
        picture = _decoded(images.get(sku, b""))
        if picture is None:
            return None
        pictures.append(picture_at(picture, CROP_SIZE))
    return np.stack(pictures) if pictures else None


def _decoded(data: bytes) -> np.ndarray | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError):
        return None
