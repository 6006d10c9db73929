"""Which tokens show the handled product: grid cells covered by the annotated box.

Two trainings read these labels: backbone pretraining (a "handled here" flag per token)
and the sampler's evidence loss (``model.losses.sampler_evidence_loss``), which teaches the
neural writer that the cells holding the handled product are the ones worth remembering.
"""

from __future__ import annotations

import numpy as np

from model.config import ModelConfig
from model.synth.records import VideoAnnotation

#: A cell is the product's when its box covers this fraction of the cell.
MIN_OVERLAP = 0.25


def box_cells(
    box: tuple[float, float, float, float], grid: tuple[int, int], min_overlap: float
) -> list[int]:
    """Grid cells (row-major) the box ``(cx, cy, w, h)`` (fractions of the frame) covers by
    ``min_overlap`` of their area, and the cell of its centre."""
    cx, cy, w, h = box
    x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    rows, cols = grid
    chosen = {min(int(cy * rows), rows - 1) * cols + min(int(cx * cols), cols - 1)}
    for r in range(rows):
        for c in range(cols):
            ox = max(0.0, min(x1, (c + 1) / cols) - max(x0, c / cols)) * cols
            oy = max(0.0, min(y1, (r + 1) / rows) - max(y0, r / rows)) * rows
            if ox * oy >= min_overlap:
                chosen.add(r * cols + c)
    return sorted(chosen)


def handled_map(
    annotation: VideoAnnotation, steps: int, cfg: ModelConfig, min_overlap: float = MIN_OVERLAP
) -> np.ndarray | None:
    """``(steps, S)`` bool: the cells of each memory frame (instant ``k / fps``) that the
    nearest annotated box within half a box interval covers (none without such a box).

    None when the video has no boxes at all (converted data may leave them out: then
    nothing is known, which is not the same as nothing handled).
    """
    if not annotation.boxes:
        return None
    times = np.array([b.t for b in annotation.boxes])  # (n_boxes,)
    out = np.zeros((steps, cfg.tokens_per_frame), dtype=bool)
    for k in range(steps):
        gap = np.abs(times - k / cfg.fps)
        nearest = int(gap.argmin())
        if gap[nearest] <= 0.5 / annotation.box_fps:
            out[k, box_cells(annotation.boxes[nearest].box, cfg.grid, min_overlap)] = True
    return out
