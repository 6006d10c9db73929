"""Teach the (otherwise frozen) backbone the store domain before Long-VMNet is trained.

No pretrained weights can be downloaded here, and with a randomly initialised MobileNet
the tokens say too little for the encoder-decoder to learn from in our budget (measured:
``docs/RESULTS.md``). So, before training, the backbone learns on *training* videos and
the catalog, then is frozen again. Every token (grid cell) is trained to tell:

- which product the hand is handling in the frame, or none, by **matching** the token to
  the catalog images of the frame's store (``model.product_match``): the prototypes are
  the catalog images themselves, passed through the same backbone, so the objective is
  "which of these pictures is in my frame" and carries over to stores and products never
  seen in training (a softmax over a table of known SKUs learnt those SKUs instead:
  docs/MODEL.md);
- which activity is going on in the frame, or none;
- whether the handled product is in this cell (the annotated box's cells).

The first two are frame-level on purpose: a memory keeps single tokens, and a token that
carries its frame's story lets a few tokens per frame stand for it (a randomly initialised
encoder-decoder learns to find 1 relevant token among 256 far too slowly; see RESULTS).
Catalog products pasted onto frames (``model.train.composites``) teach that a product
looks alike in its catalog image and in video.

A batch holds frames of one store and that store's catalog: the products a token is told
apart from are the ones that share its shelves. Validation stores' products are never
trained on, so their match accuracy measures exactly what a new store needs.

The result is a whole ``LongVMNet`` checkpoint to start training from (``cartmem train
--init DIR``): the trained backbone and, when the preset has a product-match embedding,
the one trained here. Run::

    python -m model.train.pretrain_backbone --data DATA --out DIR [--epochs 2] [--seed 0]
        [--image-size 192] [--device cuda] [--stop-after N] [--prototype-views]
        [--sampled-stores N --sampled-seconds S --workers W]
    python -m model.train.pretrain_backbone --data DATA --out DIR --resume [--stop-after N]
    python -m model.train.pretrain_backbone --data MORE --out DIR2 --init DIR [--epochs E]

It runs on a CUDA device when one is visible (``--device`` chooses): the frames and their
composites are drawn on the CPU, and only the backbone and the heads run on the device.
After every epoch ``DIR`` holds the checkpoint and what a resumed run needs (the heads, the
optimizer, the random states: ``model.train.state``), so a run longer than one sitting (a
lent GPU's 10-minute calls, a CPU session's hours) is several calls that end as one would.
``--init`` starts a new run (its own optimizer and learning-rate schedule) from a finished
one's backbone and heads, e.g. to go on with more stores than it was trained on.
``--sampled-stores`` adds never-filmed stores, rendered for the run (``model.synth.sampled``),
to the dataset's training videos; a dataset with validation videos only is then enough.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.backbone import Backbone
from model.config import ModelConfig
from model.data.handled import handled_map
from model.data.split import load_catalog_images
from model.errors import CheckpointError, ConfigError
from model.network import LongVMNet
from model.product_match import ProductMatch
from model.synth.reader import Dataset, read_dataset
from model.synth.records import VideoAnnotation
from model.synth.sampled import SampledStore
from model.synth.video_io import iter_video_frames
from model.train.composites import composite, resize
from model.train.prototype_views import prototype_views
from model.train.sampled_frames import sampled_stores
from model.train.state import Position, load_state, read_config_document, save_state

#: Receives one record per epoch.
Logger = Callable[[dict[str, object]], None]

#: ``FrameSet.sku`` of a frame where no product is handled.
NONE = -1

#: The pretraining heads' weights, beside the checkpoint, for a resumed run.
HEADS_FILE = "pretrain_heads.safetensors"


@dataclass(frozen=True)
class PretrainConfig:
    preset: str = "tiny"
    # The backbone's input side; None keeps the preset's. The grid follows at the preset's
    # stride (tiny: 32 px a cell), so 192 reads a 192 x 144 frame at its own width on 6 x 6.
    image_size: int | None = None
    epochs: int = 2
    batch_size: int = 24  # video frames per batch, all of one store
    composites: int = 24  # catalog products (pasted or whole) added to each batch
    lr: float = 2e-3
    weight_decay: float = 1e-4
    handled_pos_weight: float = 4.0  # handled cells are few (a product covers 1-3 of 16)
    match_dim: int = 64  # the product-match width when the preset has none of its own
    temperature: float = 0.1  # of the softmax over cosine similarities
    # Match frames against a random view of each catalog picture at every step
    # (``model.train.prototype_views``) instead of the clean picture; validation and
    # inference read the clean pictures either way.
    prototype_views: bool = False
    # Never-filmed stores added to the training frames (``model.synth.sampled``): this many,
    # ``sampled_seconds`` of each at the memory's rate, drawn from ``sampled_seed`` (keep it
    # apart from the seeds of the datasets whose stores validate or test).
    sampled_stores: int = 0
    sampled_seconds: int = 60
    sampled_seed: int = 9176
    seed: int = 0


@dataclass(frozen=True)
class FrameSet:
    """Frames resized to the backbone input ``(N, s, s, 3)`` uint8 and their labels."""

    frames: np.ndarray
    sku: np.ndarray  # (N,) int64: the handled product's row in ``StoreCatalogs.skus``, or NONE
    activity: np.ndarray  # (N,) int64: activity index, or num_activities for none
    handled: np.ndarray  # (N, S) bool: the handled product's box covers the cell
    store: np.ndarray  # (N,) int64: the video's store, a row of ``StoreCatalogs.sold``


@dataclass(frozen=True)
class StoreCatalogs:
    """The dataset's products (``skus``, catalog order) and, per store (``Dataset.stores``
    order; one row for a single-store dataset), the rows of ``skus`` it sells."""

    skus: tuple[str, ...]
    sold: tuple[np.ndarray, ...]

    def local(self, store: int, sku: np.ndarray) -> np.ndarray:
        """Positions of catalog rows ``sku`` in ``store``'s list, NONE → its length (the
        "none" class after the store's products)."""
        sold = self.sold[store]
        position = {int(k): i for i, k in enumerate(sold)}
        return np.array([position[int(k)] if k != NONE else len(sold) for k in sku], np.int64)


def store_catalogs(dataset: Dataset) -> StoreCatalogs:
    """What each store sells, as rows of the whole catalog."""
    skus = tuple(e.sku for e in dataset.catalog)
    if not dataset.stores:
        return StoreCatalogs(skus, (np.arange(len(skus)),))
    row = {sku: i for i, sku in enumerate(skus)}
    return StoreCatalogs(
        skus, tuple(np.array([row[s] for s in store.skus]) for store in dataset.stores.values())
    )


def frame_labels(
    annotation: VideoAnnotation,
    steps: int,
    cfg: ModelConfig,
    skus: list[str],
    activities: list[str],
) -> list[tuple[int, int, np.ndarray]]:
    """Handled SKU (row of ``skus``, or NONE), activity (``len(activities)``: none) and
    handled cells ``(S,)`` of each memory frame ``k`` (instant ``k / fps``)."""
    column = {sku: i for i, sku in enumerate(skus)}
    cells = handled_map(annotation, steps, cfg)
    if cells is None:
        cells = np.zeros((steps, cfg.tokens_per_frame), dtype=bool)
    labels = []
    for k in range(steps):
        instant = k / cfg.fps
        sku, activity = NONE, len(activities)
        for span in annotation.spans:
            if span.start - 1e-6 <= instant < span.end - 1e-6:
                sku, activity = column[span.sku], activities.index(span.activity)
        labels.append((sku, activity, cells[k]))
    return labels


def decode_frames(path: Path, cfg: ModelConfig) -> np.ndarray:
    """A video's memory frames (``cfg.fps``) resized to the backbone input ``(N, s, s, 3)``."""
    return np.stack([resize(f, cfg.image_size) for f in iter_video_frames(path, cfg.fps)])


def load_frames(
    dataset: Dataset, split: str, cfg: ModelConfig, catalogs: StoreCatalogs
) -> FrameSet:
    """Every memory frame of the split's videos, with labels."""
    skus = list(catalogs.skus)
    activities = list(dataset.activities)
    row = {store: i for i, store in enumerate(dataset.stores)}  # {}: one store, row 0
    frames, labels, stores = [], [], []
    if not dataset.videos_in(split):
        return _no_frames(cfg)
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


def _no_frames(cfg: ModelConfig) -> FrameSet:
    s = cfg.image_size
    return FrameSet(
        np.zeros((0, s, s, 3), np.uint8),
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        np.zeros((0, cfg.tokens_per_frame), bool),
        np.zeros(0, np.int64),
    )


def _whole_fps(cfg: ModelConfig) -> int:
    if cfg.fps != int(cfg.fps):
        raise ConfigError(f"Sampled stores are rendered at whole frame rates, not {cfg.fps}.")
    return int(cfg.fps)


def with_sampled_stores(
    frames: FrameSet,
    catalogs: StoreCatalogs,
    catalog: np.ndarray,
    sampled: list[SampledStore],
    cfg: ModelConfig,
    activities: list[str],
) -> tuple[FrameSet, StoreCatalogs, np.ndarray]:
    """``frames``, ``catalogs`` and ``catalog`` (pictures at the input size) with the
    ``sampled`` stores after the dataset's: their products become catalog rows of their own
    (``sampled:`` ids, never a dataset's), their frames training frames of new store rows."""
    skus, sold, pictures = list(catalogs.skus), list(catalogs.sold), [catalog]
    parts = [frames]
    for store in sampled:
        local = [item.sku for item in store.catalog]
        first = len(skus)
        skus += [f"sampled:{sku}" for sku in local]
        sold.append(np.arange(first, len(skus)))
        pictures.append(store.pictures)
        labels = frame_labels(store.annotation, len(store.frames), cfg, local, activities)
        sku = np.array([k if k == NONE else first + k for k, _, _ in labels], np.int64)
        parts.append(
            FrameSet(
                store.frames,
                sku,
                np.array([activity for _, activity, _ in labels], np.int64),
                np.stack([handled for _, _, handled in labels]),
                np.full(len(store.frames), len(sold) - 1, np.int64),
            )
        )
    merged = FrameSet(
        np.concatenate([p.frames for p in parts]),
        np.concatenate([p.sku for p in parts]),
        np.concatenate([p.activity for p in parts]),
        np.concatenate([p.handled for p in parts]),
        np.concatenate([p.store for p in parts]),
    )
    return merged, StoreCatalogs(tuple(skus), tuple(sold)), np.concatenate(pictures)


class _Heads(nn.Module):
    """On every token: product match, the frame's activity (linear), handled here (linear)."""

    def __init__(self, channels: int, match_dim: int, num_activities: int) -> None:
        super().__init__()
        self.match = ProductMatch(channels, match_dim)
        self.none = nn.Parameter(torch.randn(match_dim) * 0.1)  # the "no product" prototype
        self.activity = nn.Linear(channels, num_activities + 1)
        self.handled = nn.Linear(channels, 1)

    def product_logits(self, tokens: Tensor, catalog_tokens: Tensor, temperature: float) -> Tensor:
        """Tokens ``(N, S, C)`` against one store's catalog images ``(K, S, C)``: logits
        ``(N, S, K + 1)``, cosine similarity / temperature (the last class: none)."""
        prototypes = torch.cat(
            (self.match.images(catalog_tokens), F.normalize(self.none, dim=0)[None])
        )
        return self.match.tokens(tokens) @ prototypes.T / temperature  # (N, S, E) @ (E, K + 1)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Activity ``(N, S, A + 1)`` (the last class: none) and handled ``(N, S)`` logits."""
        return self.activity(tokens), self.handled(tokens).squeeze(-1)


def pretrain_backbone(
    data: Path,
    out: Path,
    config: PretrainConfig = PretrainConfig(),
    *,
    log: Logger | None = None,
    device: str | None = None,
    resume: bool = False,
    init: Path | None = None,
    stop_after: int | None = None,
    workers: int = 1,
) -> Path:
    """Train ``LongVMNet(preset).backbone`` on the store domain and save the net into ``out``
    after every epoch (a checkpoint to train from; its backbone loads frozen).

    ``device``: where the backbone and heads train (default: CUDA when visible, else CPU).
    ``resume``: go on with the run saved in ``out``, which must have been started with
    ``config`` (``read_pretrain_config``); the result is the same as one uninterrupted run.
    ``init``: start from the backbone and heads another run saved there (at the same input
    size), with a fresh optimizer and schedule; not with ``resume``, whose run has its own.
    ``stop_after``: end this call after that many epochs (the run stays resumable), so a run
    longer than one sitting on a lent machine is several calls.
    ``workers``: processes that render ``config.sampled_stores`` (the result does not depend
    on their number).
    """
    began = time.perf_counter()
    out = Path(out)
    where = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if resume and read_pretrain_config(out) != config:
        raise CheckpointError(f"{out} holds a pretraining run with other settings.")
    if resume and init is not None:
        raise ConfigError("A resumed run goes on from its own weights; leave out init.")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    dataset = read_dataset(Path(data))
    cfg = model_config(config)
    start = out if resume else init
    net = LongVMNet(cfg) if start is None else _load_start(Path(start), cfg)
    backbone = net.backbone
    catalogs = store_catalogs(dataset)
    train_set = load_frames(dataset, "train", cfg, catalogs)
    val_set = load_frames(dataset, "val", cfg, catalogs) if dataset.splits.get("val") else None
    images = load_catalog_images(dataset)
    catalog = np.stack([resize(images[sku], cfg.image_size) for sku in catalogs.skus])
    if config.sampled_stores:
        sampled = sampled_stores(
            config.sampled_seed,
            config.sampled_stores,
            config.sampled_seconds,
            fps=_whole_fps(cfg),
            size=cfg.image_size,
            workers=workers,
        )
        train_set, catalogs, catalog = with_sampled_stores(
            train_set, catalogs, catalog, sampled, cfg, list(dataset.activities)
        )
    if len(train_set.frames) == 0:
        raise ConfigError(f"{data} has no training videos and no sampled stores were asked for.")

    heads = _Heads(
        cfg.backbone_channels, cfg.object_match_dim or config.match_dim, len(dataset.activities)
    )
    if start is not None:
        safetensors.torch.load_model(heads, str(Path(start) / HEADS_FILE))
    heads.to(where)
    backbone.to(where)
    for p in backbone.model.parameters():
        p.requires_grad_(True)
    params = [*backbone.model.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    backgrounds = composite_backgrounds(train_set, len(catalogs.sold))
    busy = np.flatnonzero(train_set.sku != NONE)
    empty = np.flatnonzero(train_set.sku == NONE)
    # An epoch: every frame where a product is handled and as many where none is (most
    # frames show nothing handled; all of them would mostly teach "none").
    per_epoch = len(store_batches(train_set, np.concatenate([busy, busy]), config, rng))
    total = config.epochs * per_epoch
    position = Position(0, 0)
    if resume:  # optimizer moments, both random states and the step, as the last epoch left them
        position = load_state(out, optimizer, rng, None, kind="pretrain")
    step = position.step
    last = config.epochs if stop_after is None else min(config.epochs, position.epoch + stop_after)
    for epoch in range(position.epoch, last):
        backbone.model.train()  # BatchNorm learns the domain's statistics too
        idle = rng.choice(empty, min(len(busy), len(empty)), replace=False)
        batches = store_batches(train_set, np.concatenate([busy, idle]), config, rng)
        sums: dict[str, float] = {}
        for rows in batches:
            for group in optimizer.param_groups:  # cosine decay
                group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))
            step += 1
            store = int(train_set.store[rows[0]])
            batch = _batch(
                train_set, rows, store, catalogs, catalog, backgrounds, rng, config, cfg.grid
            )
            prototypes = catalog[catalogs.sold[store]]
            if config.prototype_views:
                prototypes = prototype_views(prototypes, rng)
            losses = _losses(backbone, heads, batch.to(where), prototypes, config)
            optimizer.zero_grad(set_to_none=True)
            loss = sum(losses.values())
            assert isinstance(loss, Tensor)  # _losses gives three terms: a tensor, never 0
            loss.backward()
            optimizer.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
        record: dict[str, object] = {
            "epoch": epoch + 1,
            "device": str(where),
            "seconds": round(time.perf_counter() - began, 1),
            "train_loss": {k: round(v / len(batches), 4) for k, v in sums.items()},
            "train_accuracy": _accuracy(
                backbone, heads, _subset(train_set, 2000), catalogs, catalog, config
            ),
        }
        if val_set is not None:
            record["val_accuracy"] = _accuracy(backbone, heads, val_set, catalogs, catalog, config)
        _save(out, net, heads, config)
        save_state(out, optimizer, Position(epoch + 1, step), rng, None, asdict(config),
                   kind="pretrain")  # fmt: skip
        if log is not None:
            log(record)
    return out


def _load_start(directory: Path, cfg: ModelConfig) -> LongVMNet:
    """The net a pretraining run saved in ``directory``, if it is built as ``cfg``."""
    if not (directory / HEADS_FILE).is_file():
        raise CheckpointError(f"{directory} holds no pretraining run ({HEADS_FILE} is missing).")
    net = LongVMNet.load(directory)
    if net.cfg != cfg:
        raise CheckpointError(
            f"{directory} was pretrained at another input size or preset than this run's."
        )
    return net


def read_pretrain_config(out: Path) -> PretrainConfig:
    """The settings of the pretraining run saved in ``out``."""
    return PretrainConfig(**read_config_document(Path(out), "pretrain"))


def _save(out: Path, net: LongVMNet, heads: _Heads, config: PretrainConfig) -> None:
    """The net as a checkpoint to train from, and the heads a resumed run goes on with."""
    if net.encoder_decoder.match is not None:  # the answer starts from the trained match
        net.encoder_decoder.match.load_state_dict(heads.match.state_dict())
    net.save(out)
    tmp = out / (HEADS_FILE + ".tmp")
    safetensors.torch.save_model(heads, str(tmp))
    os.replace(tmp, out / HEADS_FILE)
    (out / "pretrain_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")


def model_config(config: PretrainConfig) -> ModelConfig:
    """The preset, at ``config.image_size`` with the grid at the preset's stride if set."""
    cfg = ModelConfig.preset(config.preset)
    if config.image_size is None or config.image_size == cfg.image_size:
        return cfg
    stride = cfg.image_size // cfg.grid[0]
    if config.image_size % stride:
        raise ConfigError(
            f"Image size {config.image_size} is not a multiple of the {config.preset} "
            f"backbone's stride of {stride} pixels."
        )
    side = config.image_size // stride
    return ModelConfig.preset(config.preset, image_size=config.image_size, grid=(side, side))


def store_batches(
    frames: FrameSet, rows: np.ndarray, config: PretrainConfig, rng: np.random.Generator
) -> list[np.ndarray]:
    """``rows`` in batches of at most ``batch_size`` frames of one store, in random order."""
    batches = []
    for store in np.unique(frames.store[rows]):
        mine = rng.permutation(rows[frames.store[rows] == store])
        batches += [mine[i : i + config.batch_size] for i in range(0, len(mine), config.batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def composite_backgrounds(frames: FrameSet, stores: int) -> list[np.ndarray]:
    """Per store, the frames its products are pasted on: those where nothing is handled,
    or, where a store has none, any of its frames."""
    out = []
    for store in range(stores):
        mine = frames.store == store
        idle = np.flatnonzero(mine & (frames.sku == NONE))
        out.append(idle if len(idle) else np.flatnonzero(mine))
    return out


@dataclass(frozen=True)
class _Batch:
    images: Tensor  # (N, s, s, 3) uint8: video frames, then composites
    product: Tensor  # (N,) int64: position in the store's catalog, its length for none
    activity: Tensor  # (N,) int64: -1 unknown (composites)
    handled: Tensor  # (N, S) int64: -1 unknown

    def to(self, device: torch.device) -> _Batch:
        """The labels on ``device``; the images go there as the backbone reads them."""
        return _Batch(
            self.images, self.product.to(device), self.activity.to(device), self.handled.to(device)
        )


def _batch(
    frames: FrameSet,
    rows: np.ndarray,
    store: int,
    catalogs: StoreCatalogs,
    catalog: np.ndarray,
    backgrounds: list[np.ndarray],
    rng: np.random.Generator,
    config: PretrainConfig,
    grid: tuple[int, int],
) -> _Batch:
    """Video frames of ``store`` plus its catalog products pasted on its frames."""
    images = [frames.frames[rows]]
    sku = [frames.sku[rows]]
    activity = [frames.activity[rows]]
    handled = [frames.handled[rows].astype(np.int64)]
    s = frames.handled.shape[1]
    sold, pool = catalogs.sold[store], backgrounds[store]
    for _ in range(config.composites):
        k = int(rng.choice(sold))
        row = int(rng.choice(pool)) if len(pool) else int(rows[0])
        image, cells = composite(frames.frames[row], catalog[k], rng, grid)
        images.append(image[None])
        sku.append(np.array([k]))
        activity.append(np.array([-1]))  # a pasted product says nothing about the activity
        handled.append(np.full((1, s), -1) if cells is None else cells[None].astype(np.int64))
    return _Batch(
        torch.from_numpy(np.concatenate(images)),
        torch.from_numpy(catalogs.local(store, np.concatenate(sku))),
        torch.from_numpy(np.concatenate(activity)),
        torch.from_numpy(np.concatenate(handled)),
    )


def _losses(
    backbone: Backbone,
    heads: _Heads,
    batch: _Batch,
    store_catalog: np.ndarray,
    config: PretrainConfig,
) -> dict[str, Tensor]:
    """Cross-entropy of every token against its frame's product (among the store's catalog
    images, through the same backbone) and activity; binary cross-entropy of "handled
    here" per token (-1: unknown, skipped)."""
    tokens = _tokens(backbone, torch.cat((batch.images, torch.from_numpy(store_catalog))))
    tokens, catalog_tokens = tokens[: len(batch.images)], tokens[len(batch.images) :]
    product = heads.product_logits(tokens, catalog_tokens, config.temperature)  # (N, S, K + 1)
    activity, handled = heads(tokens)
    s = tokens.shape[1]
    known = batch.handled >= 0
    return {
        "product": F.cross_entropy(product.flatten(0, 1), batch.product.repeat_interleave(s)),
        "activity": F.cross_entropy(
            activity.flatten(0, 1), batch.activity.repeat_interleave(s), ignore_index=-1
        ),
        "handled": F.binary_cross_entropy_with_logits(
            handled[known],
            batch.handled[known].float(),
            pos_weight=torch.tensor(config.handled_pos_weight, device=handled.device),
        ),
    }


def _tokens(backbone: Backbone, images: Tensor) -> Tensor:
    """Tokens ``(N, S, C)`` with gradients (``Backbone.forward`` runs without them)."""
    features = backbone.features(backbone.preprocess(images))
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
    backbone: Backbone,
    heads: _Heads,
    frames: FrameSet,
    catalogs: StoreCatalogs,
    catalog: np.ndarray,
    config: PretrainConfig,
) -> dict[str, float | None]:
    """Per token: product accuracy (matched among its store's catalog) on frames where a
    product is handled (None when none is), the same on the cells that show the product
    (``product_handled``: what a token can see, not the frame's story), activity accuracy;
    handled-cell F1."""
    backbone.model.eval()
    hits = count = seen_hits = seen = activity_hits = tokens = tp = fp = fn = 0
    for store in np.unique(frames.store):
        store_tokens = _tokens(backbone, torch.from_numpy(catalog[catalogs.sold[store]]))
        mine = np.flatnonzero(frames.store == store)
        for rows in np.array_split(mine, 1 + len(mine) // 64):
            x = _tokens(backbone, torch.from_numpy(frames.frames[rows]))
            product = heads.product_logits(x, store_tokens, config.temperature).argmax(-1).cpu()
            activity, handled = (t.cpu() for t in heads(x))
            some = frames.sku[rows] != NONE
            truth = torch.from_numpy(catalogs.local(int(store), frames.sku[rows][some]))[:, None]
            right = product[torch.from_numpy(some)] == truth  # (n, S)
            hits += int(right.sum())
            count += int(some.sum()) * x.shape[1]
            shows = torch.from_numpy(frames.handled[rows][some])  # (n, S)
            seen_hits += int(right[shows].sum())
            seen += int(shows.sum())
            activity_truth = torch.from_numpy(frames.activity[rows])[:, None]
            activity_hits += int((activity.argmax(-1) == activity_truth).sum())
            tokens += activity.shape[0] * activity.shape[1]
            said, real = handled > 0, torch.from_numpy(frames.handled[rows])
            tp += int((said & real).sum())
            fp += int((said & ~real).sum())
            fn += int((~said & real).sum())
    return {
        "product": round(hits / count, 4) if count else None,
        "product_handled": round(seen_hits / seen, 4) if seen else None,
        "activity": round(activity_hits / max(tokens, 1), 4),
        "handled_f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument(
        "--image-size", type=int, default=None, help="backbone input side (default: preset's)"
    )
    parser.add_argument("--epochs", type=int, default=PretrainConfig.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when visible)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="go on with the run saved in --out, with its own settings",
    )
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start a new run from the backbone and heads of the run saved here",
    )
    parser.add_argument(
        "--stop-after", type=int, default=None, help="end this call after that many epochs"
    )
    parser.add_argument(
        "--sampled-stores",
        type=int,
        default=0,
        help="add this many never-filmed stores, rendered at the memory's rate, to training",
    )
    parser.add_argument(
        "--sampled-seconds",
        type=int,
        default=PretrainConfig.sampled_seconds,
        help="seconds of video rendered per sampled store",
    )
    parser.add_argument(
        "--sampled-seed",
        type=int,
        default=PretrainConfig.sampled_seed,
        help="the seed they are drawn from (no validation or test dataset's)",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes rendering them")
    parser.add_argument(
        "--prototype-views",
        action="store_true",
        help="match frames against random views of the catalog pictures, not the clean ones",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = PretrainConfig(
        preset=args.preset,
        image_size=args.image_size,
        epochs=args.epochs,
        seed=args.seed,
        prototype_views=args.prototype_views,
        sampled_stores=args.sampled_stores,
        sampled_seconds=args.sampled_seconds,
        sampled_seed=args.sampled_seed,
    )
    try:
        if args.resume:  # the run continues with its own settings
            if args.init is not None:
                raise ConfigError("--resume goes on from the run's own weights; leave out --init.")
            config = read_pretrain_config(args.out)
        elif args.init is not None:
            _load_start(args.init, model_config(config))  # one sentence now, not an hour later
        model_config(config)  # a wrong size is one sentence here, not a traceback later
    except (CheckpointError, ConfigError) as exc:
        parser.error(str(exc))
    try:
        pretrain_backbone(
            args.data,
            args.out,
            config,
            log=lambda r: print(json.dumps(r), file=sys.stdout, flush=True),
            device=args.device,
            resume=args.resume,
            init=args.init,
            stop_after=args.stop_after,
            workers=args.workers,
        )
    except ConfigError as exc:  # e.g. nothing to train on: one sentence, not a traceback
        parser.error(str(exc))


if __name__ == "__main__":
    main()
