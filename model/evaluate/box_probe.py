"""How much of the handled box's place and size a backbone's tokens carry (a linear probe).

The model reads boxes from the frozen backbone's tokens. When a stronger product match in
pretraining came with worse object answers (docs/RESULTS.md), the question was whether the
backbone's tokens had lost where the product is. This fits a ridge regression from a
frame's tokens to its annotated box, on training videos, and reports R² on validation
videos (1: the box is a linear function of the tokens; 0: no better than the mean box):

- ``whole``: all ``S`` tokens of the frame -> ``cx, cy, w, h``;
- ``cell``: the token of the cell holding the box's centre -> ``w, h`` and the centre's
  offset inside that cell (``dx, dy`` in cells), what a decoder attending that one cell has.

It also reports how the tokens' variance spreads over their channels (``spectrum``): the
largest channel's spread over the median channel's, and the share of all variance in the
ten largest channels. What a gradient-trained projection learns first lies in the large
channels; a box held in the small ones is there for a ridge fit but slow to learn.

Tokens come from the dataset's token cache (computed once per backbone and video).

    python -m model.evaluate.box_probe --data DATA --checkpoint A --checkpoint B
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from model.config import ModelConfig
from model.synth.records import VideoAnnotation

#: target names of the two probes, in column order
WHOLE_TARGETS = ("cx", "cy", "w", "h")
CELL_TARGETS = ("w", "h", "dx", "dy")
#: ridge penalty per input feature after standardising (the whole-frame probe has S times
#: the features, so it gets S times the penalty)
RIDGE = 100.0


def box_examples(
    tokens: np.ndarray, annotation: VideoAnnotation, cfg: ModelConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of one video with an annotated box within half a box interval of their instant.

    ``tokens`` ``(T, S, C)``. Returns whole-frame inputs ``(N, S*C)``, centre-cell inputs
    ``(N, C)`` and targets ``(N, 6)``: ``cx, cy, w, h`` then ``dx, dy``, the centre's offset
    inside its cell in cell units.
    """
    rows, cols = cfg.grid
    whole, cell, targets = [], [], []
    if annotation.boxes:
        times = np.array([b.t for b in annotation.boxes])  # (n_boxes,)
        for k in range(tokens.shape[0]):
            gap = np.abs(times - k / cfg.fps)
            nearest = int(gap.argmin())
            if gap[nearest] > 0.5 / annotation.box_fps:
                continue
            cx, cy, w, h = annotation.boxes[nearest].box
            r, c = min(int(cy * rows), rows - 1), min(int(cx * cols), cols - 1)
            whole.append(tokens[k].reshape(-1))
            cell.append(tokens[k, r * cols + c])
            targets.append([cx, cy, w, h, cx * cols - c, cy * rows - r])
    size = tokens.shape[1] * tokens.shape[2]
    return (
        np.array(whole, dtype=np.float64).reshape(-1, size),
        np.array(cell, dtype=np.float64).reshape(-1, tokens.shape[2]),
        np.array(targets, dtype=np.float64).reshape(-1, 6),
    )


def ridge_r2(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    penalty: float,
) -> np.ndarray:
    """R² per target column of a ridge regression fitted on train, judged on test.

    Inputs are standardised with the training statistics. The solve takes the smaller of
    the primal (features) and dual (examples) systems: both give the same weights.
    """
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    a = (train_x - mean) / std  # (N, D)
    b = (test_x - mean) / std  # (M, D)
    y_mean = train_y.mean(axis=0)
    y = train_y - y_mean  # (N, K)
    n, d = a.shape
    if d <= n:
        weights = np.linalg.solve(a.T @ a + penalty * np.eye(d), a.T @ y)  # (D, K)
    else:
        weights = a.T @ np.linalg.solve(a @ a.T + penalty * np.eye(n), y)
    predicted = b @ weights + y_mean  # (M, K)
    residual = ((predicted - test_y) ** 2).sum(axis=0)
    spread = ((test_y - test_y.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - residual / np.maximum(spread, 1e-12)


def channel_spectrum(tokens: np.ndarray) -> dict[str, float]:
    """How concentrated the variance of ``tokens`` ``(N, C)`` is over its channels."""
    spread = np.sort(tokens.std(axis=0))[::-1]  # (C,), largest first
    variance = spread**2
    return {
        "top_over_median": float(spread[0] / max(float(np.median(spread)), 1e-12)),
        "top10_share": float(variance[:10].sum() / max(float(variance.sum()), 1e-12)),
    }


def probe(checkpoint: Path, data: Path, train_videos: int, val_videos: int) -> dict[str, object]:
    """Both probes for one checkpoint's backbone on ``data``'s train and val videos."""
    from model.data.token_cache import TokenCache, default_cache_dir
    from model.network import LongVMNet
    from model.synth.reader import read_dataset

    net = LongVMNet.load(checkpoint)
    dataset = read_dataset(data)
    cache = TokenCache(default_cache_dir(data), net.cfg, net.backbone)

    def examples(split: str, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = [
            box_examples(cache.tokens(dataset.video_path(a.video_id)).float().numpy(), a, net.cfg)
            for a in dataset.videos_in(split)[:limit]
        ]
        whole, cell, targets = zip(*parts, strict=True)
        return np.concatenate(whole), np.concatenate(cell), np.concatenate(targets)

    train_whole, train_cell, train_y = examples("train", train_videos)
    val_whole, val_cell, val_y = examples("val", val_videos)
    cells = net.cfg.tokens_per_frame
    whole = ridge_r2(train_whole, train_y[:, :4], val_whole, val_y[:, :4], RIDGE * cells)
    cell = ridge_r2(train_cell, train_y[:, 2:], val_cell, val_y[:, 2:], RIDGE)
    return {
        "checkpoint": str(checkpoint),
        "train_frames": len(train_y),
        "val_frames": len(val_y),
        "whole_r2": dict(zip(WHOLE_TARGETS, np.round(whole, 4).tolist(), strict=True)),
        "cell_r2": dict(zip(CELL_TARGETS, np.round(cell, 4).tolist(), strict=True)),
        "spectrum": {k: round(v, 4) for k, v in channel_spectrum(train_cell).items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, action="append", required=True)
    parser.add_argument("--train-videos", type=int, default=40)
    parser.add_argument("--val-videos", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    for checkpoint in args.checkpoint:
        print(json.dumps(probe(checkpoint, args.data, args.train_videos, args.val_videos)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
