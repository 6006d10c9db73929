"""The cart band of a kept session's video, for the benchmarks that read it beside the
session's kept answers (``app.video.cart_band``, ``app.reconcile.cart_changes``), and the
votes of the catalog pictures where it changed (``app.reconcile.cart_naming``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.bench.identify_fusion import catalog_pictures
from app.reconcile.cart_changes import cart_candidates
from app.reconcile.cart_naming import crop_votes, moment_crops
from app.reconcile.episodes import SETTINGS, Settings
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


def candidate_votes(
    dataset: Dataset,
    session: dict[str, Any],
    frames: Sequence[np.ndarray],
    cells: np.ndarray,
    settings: Settings = SETTINGS,
) -> np.ndarray:
    """``(N, P)``: the votes of each of the session's ``cart_changes.cart_candidates`` (in its
    order) over the store's products (the answers' order)."""
    candidates, _ = cart_candidates(session["steps"], cells, settings)
    crops = moment_crops(frames, [c.moment for c in candidates])
    return crop_votes(crops, catalog_pictures(dataset, list(session["steps"])))
