"""Teach the (otherwise frozen) backbone the store domain before Long-VMNet is trained.

No pretrained weights can be downloaded here, and with a randomly initialised MobileNet
the tokens say too little for the encoder-decoder to learn from in our budget (measured:
``docs/RESULTS.md``). So, before training, the backbone learns on *training* videos and
the catalog, then is frozen again. Every token (grid cell) is trained to tell:

- which product the hand is handling in the frame, or none;
- which activity is going on in the frame, or none;
- whether the handled product is in this cell (the annotated box's cells).

The first two are frame-level on purpose: a memory keeps single tokens, and a token that
carries its frame's story lets a few tokens per frame stand for it (a randomly initialised
encoder-decoder learns to find 1 relevant token among 256 far too slowly; see RESULTS).
Catalog images, whole or shrunk and pasted onto a frame where nothing is handled, teach
that a product looks alike in the catalog image (the query's object image) and in video.

With several stores (``Dataset.stores``), a frame's product is classified among its own
store's products only (the other classes are masked out): stores with disjoint catalogs
share no product, and one softmax over all of them would also teach telling apart
products that never meet on a shelf. The classes are the training stores' SKUs, so
validation stores' products have none: their product accuracy is not measured (null). A
pasted product lies on a frame of a store that sells it.

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
from PIL import Image
from torch import Tensor, nn

from model.config import ModelConfig
from model.data.handled import MIN_OVERLAP, box_cells, handled_map
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
    epochs: int = 3  # over 105 training videos (the shipped recipe, docs/RESULTS.md)
    batch_size: int = 24  # video frames per batch
    composites: int = 24  # catalog products (pasted or whole) added to each batch
    lr: float = 2e-3
    weight_decay: float = 1e-4
    handled_pos_weight: float = 4.0  # handled cells are few (a product covers 1-3 of 16)
    seed: int = 0


@dataclass(frozen=True)
class FrameSet:
    """Frames resized to the backbone input ``(N, s, s, 3)`` uint8 and their labels."""

    frames: np.ndarray
    sku: np.ndarray  # (N,) int64: the handled product's class, num_skus for none, -1 unknown
    activity: np.ndarray  # (N,) int64: activity index, or num_activities for none
    handled: np.ndarray  # (N, S) bool: the handled product's box covers the cell
    store: np.ndarray  # (N,) int64: the video's store, a row of ``ProductClasses.sold``


@dataclass(frozen=True)
class ProductClasses:
    """The product head's classes: ``skus``, then "none".

    ``sold`` ``(num_stores, K + 1)`` bool, rows in ``Dataset.stores`` order: the classes
    each store sells ("none" always); None for a single-store dataset, whose one catalog
    is every video's.
    """

    skus: tuple[str, ...]
    sold: np.ndarray | None = None


def product_classes(dataset: Dataset, split: str = "train") -> ProductClasses:
    """The products the split's videos' stores sell, in catalog order (one store: all)."""
    if not dataset.stores:
        return ProductClasses(tuple(e.sku for e in dataset.catalog))
    selling = {sku for v in dataset.splits.get(split, ()) for sku in dataset.skus_of(v)}
    skus = tuple(e.sku for e in dataset.catalog if e.sku in selling)
    column = {sku: i for i, sku in enumerate(skus)}
    sold = np.zeros((len(dataset.stores), len(skus) + 1), dtype=bool)
    sold[:, -1] = True
    for row, store in enumerate(dataset.stores.values()):
        sold[row, [column[s] for s in store.skus if s in column]] = True
    return ProductClasses(skus, sold)


def frame_labels(
    annotation: VideoAnnotation,
    steps: int,
    cfg: ModelConfig,
    skus: list[str],
    activities: list[str],
) -> list[tuple[int, int, np.ndarray]]:
    """Handled SKU, activity and handled cells ``(S,)`` of each memory frame ``k``
    (instant ``k / fps``); ``len(skus)`` / ``len(activities)`` mean none, SKU -1 a product
    that is not one of ``skus`` (another store's)."""
    column = {sku: i for i, sku in enumerate(skus)}
    cells = handled_map(annotation, steps, cfg)
    if cells is None:
        cells = np.zeros((steps, cfg.tokens_per_frame), dtype=bool)
    labels = []
    for k in range(steps):
        instant = k / cfg.fps
        sku, activity = len(skus), len(activities)
        for span in annotation.spans:
            if span.start - 1e-6 <= instant < span.end - 1e-6:
                sku, activity = column.get(span.sku, -1), activities.index(span.activity)
        labels.append((sku, activity, cells[k]))
    return labels


def decode_frames(path: Path, cfg: ModelConfig) -> np.ndarray:
    """A video's memory frames (``cfg.fps``) resized to the backbone input ``(N, s, s, 3)``."""
    return np.stack([resize(f, cfg.image_size) for f in iter_video_frames(path, cfg.fps)])


def load_frames(
    dataset: Dataset, split: str, cfg: ModelConfig, classes: ProductClasses
) -> FrameSet:
    """Every memory frame of the split's videos, with labels."""
    skus = list(classes.skus)
    activities = list(dataset.activities)
    row = {store: i for i, store in enumerate(dataset.stores)}  # {}: one store, row 0
    frames, labels, stores = [], [], []
    for annotation in dataset.videos_in(split):
        video = decode_frames(dataset.video_path(annotation.video_id), cfg)
        frames.append(video)
        labels += frame_labels(annotation, len(video), cfg, skus, activities)
        stores.append(np.full(len(video), row.get(annotation.store or "", 0), dtype=np.int64))
    return FrameSet(
        np.concatenate(frames),
        np.array([sku for sku, _, _ in labels], dtype=np.int64),
        np.array([activity for _, activity, _ in labels], dtype=np.int64),
        np.stack([handled for _, _, handled in labels]),
        np.concatenate(stores),
    )


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


class _Heads(nn.Module):
    """Linear probes on every token: frame's product, frame's activity, handled here."""

    def __init__(self, channels: int, num_skus: int, num_activities: int) -> None:
        super().__init__()
        self.product = nn.Linear(channels, num_skus + 1)
        self.activity = nn.Linear(channels, num_activities + 1)
        self.handled = nn.Linear(channels, 1)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Tokens ``(N, S, C)`` → product ``(N, S, K + 1)`` and activity ``(N, S, A + 1)``
        logits (the last class: none), handled logits ``(N, S)``."""
        handled = self.handled(tokens).squeeze(-1)  # (N, S, 1) -> (N, S)
        return self.product(tokens), self.activity(tokens), handled


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
    classes = product_classes(dataset, "train")
    train_set = load_frames(dataset, "train", cfg, classes)
    val_set = load_frames(dataset, "val", cfg, classes) if dataset.splits.get("val") else None
    catalog = list(load_catalog_images(dataset, classes.skus).values())  # classes' order

    heads = _Heads(cfg.backbone_channels, len(catalog), len(dataset.activities))
    for p in backbone.model.parameters():
        p.requires_grad_(True)
    params = [*backbone.model.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    empty = np.flatnonzero(train_set.sku == len(catalog))
    backgrounds = composite_backgrounds(train_set, empty, classes)  # per pasted product
    busy = np.flatnonzero(train_set.sku < len(catalog))
    # An epoch: every frame where a product is handled and as many where none is (most
    # frames show nothing handled; all of them would mostly teach "none").
    per_epoch = math.ceil(2 * len(busy) / config.batch_size)
    total = config.epochs * per_epoch
    for epoch in range(config.epochs):
        backbone.model.train()  # BatchNorm learns the domain's statistics too
        idle = rng.choice(empty, min(len(busy), len(empty)), replace=False)
        order = rng.permutation(np.concatenate([busy, idle]))
        sums: dict[str, float] = {}
        for i, first in enumerate(range(0, len(order), config.batch_size)):
            step = epoch * per_epoch + i
            for group in optimizer.param_groups:  # cosine decay
                group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            rows = order[first : first + config.batch_size]
            images, sku, activity, handled, store = _batch(
                train_set, rows, catalog, backgrounds, rng, config, cfg.grid
            )
            sold = None if classes.sold is None else torch.from_numpy(classes.sold[store])
            outputs = heads(_tokens(backbone, images))
            losses = _losses(outputs, sku, activity, handled, config, sold)
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()  # type: ignore[union-attr]
            optimizer.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
        record: dict[str, object] = {
            "epoch": epoch + 1,
            "seconds": round(time.perf_counter() - began, 1),
            "train_loss": {k: round(v / per_epoch, 4) for k, v in sums.items()},
            "train_accuracy": _accuracy(backbone, heads, _subset(train_set, 2000), classes),
        }
        if val_set is not None:
            record["val_accuracy"] = _accuracy(backbone, heads, val_set, classes)
        if log is not None:
            log(record)
    for p in backbone.model.parameters():
        p.requires_grad_(False)
    backbone.model.eval()
    net.save(out)
    (Path(out) / "pretrain_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    return Path(out)


def composite_backgrounds(
    frames: FrameSet, empty: np.ndarray, classes: ProductClasses
) -> list[np.ndarray]:
    """Per product class, the frames it may be pasted on: ``empty`` ones (nothing handled)
    of a store that sells it, or, where a store has none, any of its frames."""
    if classes.sold is None:
        return [empty] * len(classes.skus)
    out = []
    for k in range(len(classes.skus)):
        selling = classes.sold[frames.store, k]  # (N,) bool
        pool = empty[selling[empty]]
        out.append(pool if len(pool) else np.flatnonzero(selling))
    return out


def _losses(
    outputs: tuple[Tensor, Tensor, Tensor],
    sku: Tensor,
    activity: Tensor,
    handled: Tensor,
    config: PretrainConfig,
    sold: Tensor | None = None,
) -> dict[str, Tensor]:
    """Cross-entropy of every token against its frame's product and activity; binary
    cross-entropy of "handled here" per token (-1: unknown, skipped).

    ``sold`` ``(N, K + 1)`` bool: the classes each image's store sells; the product is
    classified among those only.
    """
    product_logits, activity_logits, handled_logits = outputs
    if sold is not None:
        product_logits = _within_store(product_logits, sold)
    s = product_logits.shape[1]
    known = handled >= 0
    return {
        "product": F.cross_entropy(
            product_logits.flatten(0, 1), sku.repeat_interleave(s), ignore_index=-1
        ),
        "activity": F.cross_entropy(
            activity_logits.flatten(0, 1), activity.repeat_interleave(s), ignore_index=-1
        ),
        "handled": F.binary_cross_entropy_with_logits(
            handled_logits[known],
            handled[known].float(),
            pos_weight=torch.tensor(config.handled_pos_weight),
        ),
    }


def _within_store(product_logits: Tensor, sold: Tensor) -> Tensor:
    """Product logits ``(N, S, K + 1)`` with the classes the image's store does not sell
    (``sold`` ``(N, K + 1)`` False) at -inf."""
    return product_logits.masked_fill(~sold[:, None, :].to(product_logits.device), float("-inf"))


def _batch(
    frames: FrameSet,
    rows: np.ndarray,
    catalog: list[np.ndarray],
    backgrounds: list[np.ndarray],
    rng: np.random.Generator,
    config: PretrainConfig,
    grid: tuple[int, int],
) -> tuple[Tensor, Tensor, Tensor, Tensor, np.ndarray]:
    """Video frames plus catalog images: images ``(N, s, s, 3)``, product ``(N,)``,
    activity ``(N,)``, handled cells ``(N, S)`` (-1: unknown) and store ``(N,)``.

    ``backgrounds[k]``: the frames product ``k`` may be pasted on
    (``composite_backgrounds``)."""
    images = [frames.frames[rows]]
    sku = [frames.sku[rows]]
    activity = [frames.activity[rows]]
    handled = [frames.handled[rows].astype(np.int64)]
    store = [frames.store[rows]]
    s = frames.handled.shape[1]
    for _ in range(config.composites):
        k = int(rng.integers(len(catalog)))
        pool = backgrounds[k]
        row = int(rng.choice(pool)) if len(pool) else 0
        image, cells = composite(frames.frames[row], catalog[k], rng, grid)
        images.append(image[None])
        sku.append(np.array([k]))
        activity.append(np.array([-1]))  # a pasted product says nothing about the activity
        handled.append(np.full((1, s), -1) if cells is None else cells[None].astype(np.int64))
        store.append(frames.store[row : row + 1])
    return (
        torch.from_numpy(np.concatenate(images)),
        torch.from_numpy(np.concatenate(sku)),
        torch.from_numpy(np.concatenate(activity)),
        torch.from_numpy(np.concatenate(handled)),
        np.concatenate(store),
    )


def _tokens(backbone: nn.Module, images: Tensor) -> Tensor:
    """Tokens ``(N, S, C)`` with gradients (``Backbone.forward`` runs without them)."""
    features = backbone.model.forward_features(backbone.preprocess(images))
    return backbone._tokens(features)


def _subset(frames: FrameSet, count: int) -> FrameSet:
    rows = np.linspace(0, len(frames.frames) - 1, min(count, len(frames.frames))).astype(int)
    return FrameSet(
        frames.frames[rows],
        frames.sku[rows],
        frames.activity[rows],
        frames.handled[rows],
        frames.store[rows],
    )


@torch.no_grad()
def _accuracy(
    backbone: nn.Module, heads: _Heads, frames: FrameSet, classes: ProductClasses
) -> dict[str, float | None]:
    """Per token: product accuracy on frames where one of the classes is handled (among
    the store's products; None when no frame has one), activity accuracy; handled-cell F1."""
    backbone.model.eval()
    num_skus = heads.product.out_features - 1
    hits = count = activity_hits = tokens = tp = fp = fn = 0
    for first in range(0, len(frames.frames), 64):
        part = slice(first, first + 64)
        product, activity, handled = heads(_tokens(backbone, torch.from_numpy(frames.frames[part])))
        if classes.sold is not None:
            product = _within_store(product, torch.from_numpy(classes.sold[frames.store[part]]))
        sku = torch.from_numpy(frames.sku[part])[:, None].expand(-1, product.shape[1])
        some = (sku >= 0) & (sku < num_skus)
        hits += int((product.argmax(-1)[some] == sku[some]).sum())
        count += int(some.sum())
        truth = torch.from_numpy(frames.activity[part])[:, None]
        activity_hits += int((activity.argmax(-1) == truth).sum())
        tokens += activity.shape[0] * activity.shape[1]
        said, real = handled > 0, torch.from_numpy(frames.handled[part])
        tp, fp, fn = (
            tp + int((said & real).sum()),
            fp + int((said & ~real).sum()),
            fn + int((~said & real).sum()),
        )
    return {
        "product": round(hits / max(count, 1), 4) if count or classes.sold is None else None,
        "activity": round(activity_hits / max(tokens, 1), 4),
        "handled_f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4),
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
