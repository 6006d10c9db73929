"""Teach the (otherwise frozen) backbone the store domain before Long-VMNet is trained.

No pretrained weights can be downloaded here, and a randomly initialised MobileNet's
tokens barely tell one product from another (measured: ``docs/RESULTS.md``). So, before
training, the backbone learns on *training* videos and the catalog, then is frozen again:

- per token (grid cell): which product the hand is handling there (the annotated box's
  cells), or none — product identity and place in the tokens the memory keeps;
- per frame: the activity going on, or none (mean of the tokens);
- catalog composites: a catalog image, shrunk and pasted onto a random training frame,
  labels the cells it covers with its SKU, so a product looks alike in the catalog image
  (the query's object image) and in the video.

The result is a whole ``LongVMNet`` checkpoint (the other weights are untouched random
init) to start training from: ``cartmem train --init DIR``. Run::

    python -m model.train.pretrain_backbone --data DATA --out DIR [--epochs 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.config import ModelConfig
from model.data.split import load_catalog_images
from model.network import LongVMNet
from model.synth.reader import Dataset, read_dataset
from model.synth.records import VideoAnnotation
from model.synth.video_io import iter_video_frames

#: Receives one record per epoch.
Logger = Callable[[dict[str, object]], None]


@dataclass(frozen=True)
class PretrainConfig:
    preset: str = "tiny"
    epochs: int = 3
    batch_size: int = 32
    composites: int = 8  # catalog composites added to each batch
    lr: float = 1e-3
    weight_decay: float = 1e-4
    handled_pos_weight: float = 4.0  # handled cells are few (a product covers 1-3 of 16)
    min_overlap: float = 0.25  # a cell is the product's when the box covers this much of it
    seed: int = 0


@dataclass(frozen=True)
class FrameSet:
    """Frames resized to the backbone input ``(N, s, s, 3)`` uint8 and their labels."""

    frames: np.ndarray
    cells: np.ndarray  # (N, S) int64: SKU index on the handled product's cells, else -1
    activity: np.ndarray  # (N,) int64: activity index, or num_activities for none


def frame_labels(
    annotation: VideoAnnotation,
    k: int,
    fps: float,
    grid: tuple[int, int],
    skus: list[str],
    activities: list[str],
    min_overlap: float,
) -> tuple[np.ndarray, int]:
    """Cell labels ``(S,)`` and the activity of memory frame ``k`` (the instant ``k / fps``).

    A cell gets the SKU of the handled product when its box covers it, else -1: other
    cells may show the same product on the shelf (identical facings), so "no product"
    would be a wrong label there.
    """
    instant = k / fps
    cells = np.full(grid[0] * grid[1], -1, dtype=np.int64)
    activity = len(activities)
    for span in annotation.spans:
        if span.start - 1e-6 <= instant < span.end - 1e-6:
            activity = activities.index(span.activity)
    near = [b for b in annotation.boxes if abs(b.t - instant) <= 0.5 / annotation.box_fps]
    if near:
        box = min(near, key=lambda b: abs(b.t - instant))
        for cell in box_cells(box.box, grid, min_overlap):
            cells[cell] = skus.index(box.sku)
    return cells, activity


def box_cells(
    box: tuple[float, float, float, float], grid: tuple[int, int], min_overlap: float
) -> list[int]:
    """Grid cells (row-major) the box covers by ``min_overlap`` of their area, and the
    cell of its centre."""
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


def load_frames(dataset: Dataset, split: str, cfg: ModelConfig, config: PretrainConfig) -> FrameSet:
    """Every memory frame (``cfg.fps``) of the split's videos, with labels."""
    skus = [e.sku for e in dataset.catalog]
    activities = list(dataset.activities)
    frames, cells, activity = [], [], []
    for annotation in dataset.videos_in(split):
        for k, frame in enumerate(
            iter_video_frames(dataset.video_path(annotation.video_id), cfg.fps)
        ):
            frames.append(resize(frame, cfg.image_size))
            c, a = frame_labels(
                annotation, k, cfg.fps, cfg.grid, skus, activities, config.min_overlap
            )
            cells.append(c)
            activity.append(a)
    return FrameSet(np.stack(frames), np.stack(cells), np.array(activity, dtype=np.int64))


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` → ``(size, size, 3)`` with the backbone's resampling."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def composite(
    background: np.ndarray,
    product: np.ndarray,
    sku: int,
    rng: np.random.Generator,
    grid: tuple[int, int],
    min_overlap: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``product`` (a catalog image) shrunk and pasted onto ``background``; cell labels."""
    size = background.shape[0]
    side = int(rng.integers(size // 5, size + 1))
    x, y = (int(v) for v in rng.integers(0, size - side + 1, 2))
    image = background.copy()
    image[y : y + side, x : x + side] = resize(product, side)
    cells = np.full(grid[0] * grid[1], -1, dtype=np.int64)
    box = ((x + side / 2) / size, (y + side / 2) / size, side / size, side / size)
    cells[box_cells(box, grid, min_overlap)] = sku
    return image, cells


class _Heads(nn.Module):
    """Linear probes on the tokens: product and "handled here" per cell, activity per frame."""

    def __init__(self, channels: int, num_skus: int, num_activities: int) -> None:
        super().__init__()
        self.product = nn.Linear(channels, num_skus)
        self.handled = nn.Linear(channels, 1)
        self.frame = nn.Linear(channels, num_activities + 1)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Tokens ``(N, S, C)`` → product logits ``(N, S, K)``, handled logits ``(N, S)``,
        activity logits ``(N, A + 1)`` (the last: no activity)."""
        handled = self.handled(tokens).squeeze(-1)  # (N, S, 1) -> (N, S)
        return self.product(tokens), handled, self.frame(tokens.mean(dim=1))


def pretrain_backbone(
    data: Path,
    out: Path,
    config: PretrainConfig = PretrainConfig(),
    *,
    log: Logger | None = None,
) -> Path:
    """Train ``LongVMNet(preset).backbone`` on the store domain, freeze it, save the net."""
    began = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    dataset = read_dataset(Path(data))
    cfg = ModelConfig.preset(config.preset)
    net = LongVMNet(cfg)
    backbone = net.backbone
    train_set = load_frames(dataset, "train", cfg, config)
    val_set = load_frames(dataset, "val", cfg, config) if dataset.splits.get("val") else None
    catalog = list(load_catalog_images(dataset).values())

    heads = _Heads(cfg.backbone_channels, len(catalog), len(dataset.activities))
    for p in backbone.model.parameters():
        p.requires_grad_(True)
    params = [*backbone.model.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = math.ceil(len(train_set.frames) / config.batch_size)
    total = config.epochs * per_epoch
    for epoch in range(config.epochs):
        backbone.model.train()  # BatchNorm learns the domain's statistics too
        order = rng.permutation(len(train_set.frames))
        sums: dict[str, float] = {}
        for i, first in enumerate(range(0, len(order), config.batch_size)):
            step = epoch * per_epoch + i
            for group in optimizer.param_groups:  # cosine decay
                group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            batch = _batch(
                train_set, order[first : first + config.batch_size], catalog, rng, cfg, config
            )
            losses = _losses(heads(_tokens(backbone, batch[0])), *batch[1:], config)
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()  # type: ignore[union-attr]
            optimizer.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
        record: dict[str, object] = {
            "epoch": epoch + 1,
            "seconds": round(time.perf_counter() - began, 1),
            "train": {k: round(v / per_epoch, 4) for k, v in sums.items()},
            "train_accuracy": _accuracy(
                backbone, heads, _subset(train_set, len(val_set.frames) if val_set else 1000)
            ),
        }
        if val_set is not None:
            record["val_accuracy"] = _accuracy(backbone, heads, val_set)
        if log is not None:
            log(record)
    for p in backbone.model.parameters():
        p.requires_grad_(False)
    backbone.model.eval()
    net.save(out)
    (Path(out) / "pretrain_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    return Path(out)


def _losses(
    outputs: tuple[Tensor, Tensor, Tensor],
    cells: Tensor,
    handled: Tensor,
    activity: Tensor,
    config: PretrainConfig,
) -> dict[str, Tensor]:
    """Cross-entropy per labelled cell (product), per cell (handled), per frame (activity)."""
    product_logits, handled_logits, frame_logits = outputs
    known = handled >= 0
    return {
        "product": F.cross_entropy(product_logits.flatten(0, 1), cells.flatten(), ignore_index=-1),
        "handled": F.binary_cross_entropy_with_logits(
            handled_logits[known],
            handled[known].float(),
            pos_weight=torch.tensor(config.handled_pos_weight),
        ),
        "activity": F.cross_entropy(frame_logits, activity, ignore_index=-1),
    }


def _batch(
    frames: FrameSet,
    rows: np.ndarray,
    catalog: list[np.ndarray],
    rng: np.random.Generator,
    cfg: ModelConfig,
    config: PretrainConfig,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Video frames plus catalog composites: images ``(N, s, s, 3)``, product per cell
    ``(N, S)``, handled per cell ``(N, S)`` (-1: unknown) and activity ``(N,)``."""
    images = [frames.frames[rows]]
    cells = [frames.cells[rows]]
    handled = [(frames.cells[rows] >= 0).astype(np.int64)]
    activity = [frames.activity[rows]]
    for _ in range(config.composites):
        sku = int(rng.integers(len(catalog)))
        background = frames.frames[int(rng.integers(len(frames.frames)))]
        image, labels = composite(background, catalog[sku], sku, rng, cfg.grid, config.min_overlap)
        images.append(image[None])
        cells.append(labels[None])
        handled.append(np.full((1, labels.shape[0]), -1))  # pasted, not handled: unknown
        activity.append(np.array([-1]))  # a pasted product says nothing about the activity
    return (
        torch.from_numpy(np.concatenate(images)),
        torch.from_numpy(np.concatenate(cells)),
        torch.from_numpy(np.concatenate(handled)),
        torch.from_numpy(np.concatenate(activity)),
    )


def _tokens(backbone: nn.Module, images: Tensor) -> Tensor:
    """Tokens ``(N, S, C)`` with gradients (``Backbone.forward`` runs without them)."""
    features = backbone.model.forward_features(backbone.preprocess(images))
    return backbone._tokens(features)


def _subset(frames: FrameSet, count: int) -> FrameSet:
    rows = np.linspace(0, len(frames.frames) - 1, min(count, len(frames.frames))).astype(int)
    return FrameSet(frames.frames[rows], frames.cells[rows], frames.activity[rows])


@torch.no_grad()
def _accuracy(backbone: nn.Module, heads: _Heads, frames: FrameSet) -> dict[str, float]:
    """Product accuracy on the handled product's cells, handled-cell F1, activity accuracy."""
    backbone.model.eval()
    hits = cells = activity_hits = tp = fp = fn = 0
    for first in range(0, len(frames.frames), 64):
        images = torch.from_numpy(frames.frames[first : first + 64])
        product_logits, handled_logits, frame_logits = heads(_tokens(backbone, images))
        truth = torch.from_numpy(frames.cells[first : first + 64])
        product = truth >= 0
        hits += int((product_logits.argmax(-1)[product] == truth[product]).sum())
        cells += int(product.sum())
        said = handled_logits > 0
        tp, fp, fn = (
            tp + int((said & product).sum()),
            fp + int((said & ~product).sum()),
            fn + int((~said & product).sum()),
        )
        truth_activity = torch.from_numpy(frames.activity[first : first + 64])
        activity_hits += int((frame_logits.argmax(-1) == truth_activity).sum())
    return {
        "product_cells": round(hits / max(cells, 1), 4),
        "handled_f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4),
        "activity": round(activity_hits / len(frames.frames), 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--epochs", type=int, default=PretrainConfig.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = PretrainConfig(preset=args.preset, epochs=args.epochs, seed=args.seed)
    pretrain_backbone(
        args.data, args.out, config, log=lambda r: print(json.dumps(r), file=sys.stdout, flush=True)
    )


if __name__ == "__main__":
    main()
