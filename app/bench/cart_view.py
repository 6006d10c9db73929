"""The cart band of a kept session's video, for the benchmarks that read it beside the
session's kept answers (``app.video.cart_band``, ``app.reconcile.cart_changes``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.video.cart_band import cart_cells
from model.synth.reader import Dataset
from model.synth.video_io import iter_video_frames


def session_frames(dataset: Dataset, session: dict[str, Any]) -> list[np.ndarray]:
    """A kept session's video, one frame per step of its answers."""
    fps = float(next(iter(session["steps"].values()))["fps"])
    return list(iter_video_frames(dataset.video_path(session["video_id"]), fps))


def session_cells(dataset: Dataset, session: dict[str, Any]) -> np.ndarray:
    """``cart_cells`` of a kept session's video, one frame per step of its answers."""
    return cart_cells(session_frames(dataset, session))
