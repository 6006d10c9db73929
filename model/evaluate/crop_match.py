"""How well a handled product can be named from its own crop (a probe, not the model).

The model matches grid tokens of a whole 128 px frame against catalog pictures, and at a
put the handled product is still often given to a look-alike (docs/RESULTS.md). This asks
how far reading the frame *at the product* would take the match: each annotated box of the
handled product is cut from the source frame (a square around the box, at the video's own
resolution, or first blurred to a coarser one), and named among its store's catalog:

- ``colour``: no training; the crop's hue histogram against each picture's (nearest);
- ``template``: no training; each picture's product slid over the crop, scored by masked
  normalised cross-correlation (``template_scores``);
- a small CNN (MobileNetV3-small, random init, as the shipped backbone starts) trained on
  training stores' crops to match each crop against its store's pictures through the same
  network, then scored on the validation stores, whose products it never saw. ``--views``
  shows it each picture through ``model.train.prototype_views`` instead of clean.

Each is scored per crop and per handling (the crops of one item over the seconds it is
held, their log-softmax summed), the second being what naming a put's product needs. The
annotated box is a perfect localisation, so this bounds any design that first finds the
hand and then looks at it.

    python -m model.evaluate.crop_match --train DATA --val DATA [--epochs 16] [--views]
        [--resolution 0.667] [--threads 2]
    python -m model.evaluate.crop_match --sampled-stores 2000 --val DATA [--sampled-seconds 60]
        [--workers 2] ...

``--sampled-stores`` trains on crops of never-filmed stores rendered for the run
(``model.synth.sampled``) instead of a dataset's videos.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from model.data.split import load_catalog_images
from model.synth.reader import Dataset, read_dataset
from model.synth.records import BoxCoords
from model.synth.video_io import iter_video_frames
from model.train.composites import cutout
from model.train.prototype_views import prototype_views
from model.train.sampled_frames import iter_sampled_stores

#: Crop side in pixels, for crops and catalog pictures alike.
CROP_SIZE = 64
#: The square cut around a box is this much larger than the box's longer side.
MARGIN = 1.15
#: Hue bins of the colour histogram.
HUE_BINS = 24


@dataclass(frozen=True)
class Crops:
    """Handled-product crops of a dataset and its stores' catalog pictures."""

    images: np.ndarray  # (N, s, s, 3) uint8
    product: np.ndarray  # (N,) int64: the product's position in its store's catalog
    store: np.ndarray  # (N,) int64: row of ``catalogs``
    catalogs: np.ndarray  # (stores, K, s, s, 3) uint8: each store's pictures, in its order
    # (N,) int64: crops of one handling of one item (seconds in a row, one product) share
    # it; None: every crop is a handling of its own
    episode: np.ndarray | None = None


def episode_ids(handled: Sequence[tuple[object, int, str]]) -> np.ndarray:
    """An id per crop, given each crop's (video, second, product) in time order: a new one
    when the video or the product changes or a second is skipped."""
    ids: list[int] = []
    last: tuple[object, int, str] | None = None
    for video, second, sku in handled:
        same = last is not None and last[0] == video and last[2] == sku and second <= last[1] + 1
        ids.append(ids[-1] if same else (ids[-1] + 1 if ids else 0))
        last = (video, second, sku)
    return np.array(ids, dtype=np.int64)


def square_crop(frame: np.ndarray, box: BoxCoords, size: int) -> np.ndarray:
    """The square around ``box`` (normalised ``cx, cy, w, h``) of ``frame`` at ``size``."""
    height, width = frame.shape[:2]
    cx, cy, w, h = box
    side = max(w * width, h * height) * MARGIN
    x0, y0 = cx * width - side / 2, cy * height - side / 2
    square = Image.fromarray(frame).crop((int(x0), int(y0), int(x0 + side), int(y0 + side)))
    return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR))


def picture_at(picture: np.ndarray, size: int) -> np.ndarray:
    """A catalog picture ``(P, P, 3)`` at ``size`` a side, as crops are compared with it."""
    return np.asarray(Image.fromarray(picture).resize((size, size), Image.Resampling.BILINEAR))


def coarser(frame: np.ndarray, resolution: float) -> np.ndarray:
    """``frame`` as a camera of ``resolution`` times its pixels a side would show it."""
    if resolution == 1.0:
        return frame
    height, width = frame.shape[:2]
    small = Image.fromarray(frame).resize(
        (round(width * resolution), round(height * resolution)), Image.Resampling.BILINEAR
    )
    return np.asarray(small.resize((width, height), Image.Resampling.BILINEAR))


def load_crops(dataset: Dataset, size: int = CROP_SIZE, resolution: float = 1.0) -> Crops:
    """Every annotated box on a whole second of every video (the memory's 1 fps frames)."""
    pictures = {sku: picture_at(p, size) for sku, p in load_catalog_images(dataset).items()}
    images, product, store, handled = [], [], [], []
    sold: dict[str | None, list[str]] = {}  # per store, its products; the row is its order
    for split in dataset.splits:
        for video in dataset.videos_in(split):
            skus = sold.setdefault(video.store, list(dataset.skus_of(video.video_id)))
            row = list(sold).index(video.store)
            frames = list(iter_video_frames(dataset.video_path(video.video_id), 1.0))
            for box in video.boxes:
                k = round(box.t)
                if abs(box.t - k) > 1e-3 or k >= len(frames):
                    continue
                images.append(square_crop(coarser(frames[k], resolution), box.box, size))
                product.append(skus.index(box.sku))
                store.append(row)
                handled.append((video.video_id, k, box.sku))
    catalogs = np.stack([np.stack([pictures[s] for s in skus]) for skus in sold.values()])
    return Crops(
        np.stack(images), np.array(product), np.array(store), catalogs, episode_ids(handled)
    )


def sampled_crops(
    count: int, seconds: int, seed: int, size: int = CROP_SIZE, workers: int = 1
) -> Crops:
    """The handled product's crops of ``count`` never-filmed stores (``model.synth.sampled``),
    one frame a second, ``seconds`` of each."""
    images, product, store, catalogs, handled = [], [], [], [], []
    for row, sampled in enumerate(
        iter_sampled_stores(seed, count, seconds, fps=1, size=None, workers=workers)
    ):
        skus = [item.sku for item in sampled.catalog]
        for box in sampled.annotation.boxes:
            images.append(square_crop(sampled.frames[round(box.t)], box.box, size))
            product.append(skus.index(box.sku))
            store.append(row)
            handled.append((row, round(box.t), box.sku))
        catalogs.append(np.stack([picture_at(p, size) for p in sampled.pictures]))
    return Crops(
        np.stack(images),
        np.array(product),
        np.array(store),
        np.stack(catalogs),
        episode_ids(handled),
    )


def colour_histogram(images: Tensor) -> Tensor:
    """Hue histograms ``(N, HUE_BINS)`` of RGB uint8 images ``(N, H, W, 3)``: each coloured
    pixel votes for its hue by its saturation (grey, dark and washed-out pixels do not),
    soft-binned; square root of the shares, so a dot product is a Bhattacharyya overlap."""
    x = images.float().flatten(1, 2) / 255  # (N, P, 3)
    top, _ = x.max(-1)
    spread = top - x.min(-1).values
    r, g, b = x.unbind(-1)
    d = spread.clamp_min(1e-6)
    hue = (
        torch.where(
            top == r, ((g - b) / d) % 6, torch.where(top == g, (b - r) / d + 2, (r - g) / d + 4)
        )
        / 6
    )  # (N, P) in [0, 1)
    saturation = spread / top.clamp_min(1e-6)
    weight = saturation * (top > 0.15) * (saturation > 0.2)
    position = (hue % 1) * HUE_BINS
    low = position.floor().long() % HUE_BINS
    share = position - position.floor()
    out = torch.zeros(x.shape[0], HUE_BINS)
    out.scatter_add_(1, low, weight * (1 - share))
    out.scatter_add_(1, (low + 1) % HUE_BINS, weight * share)
    return (out / out.sum(-1, keepdim=True).clamp_min(1e-6)).sqrt()


def colour_accuracy(crops: Crops) -> float:
    """Share of crops whose nearest picture by hue histogram is their product's."""
    return nearest_picture_accuracy(crops, colour_histogram)


def template_scores(images: Tensor, pictures: np.ndarray) -> Tensor:
    """How well each picture's product, as a template, fits somewhere in each crop:
    ``(n, K)`` for crops ``(n, s, s, 3)`` and pictures ``(K, s, s, 3)`` uint8, no training.

    The product is cut out of its picture (``composites.cutout``), scaled so that its
    longer side is the crop's less the margin ``square_crop`` leaves, and slid over the
    crop (a tenth of its side beyond each edge); the score is the best normalised
    cross-correlation under the product's mask, one gain over all three channels, so a
    change of light does not change it but a change of colour does.
    """
    side = images.shape[1]
    pad = side // 10
    x = F.pad(images.permute(0, 3, 1, 2).float() / 255, (pad,) * 4, mode="replicate")
    best = []
    for picture in pictures:
        template, mask = _template(picture, round(side / MARGIN))  # (3, h, w), (1, h, w)
        n = 3 * mask.sum()
        centred = (template - (template * mask).sum() / n) * mask
        masks = mask.expand(3, -1, -1)[None]
        products = F.conv2d(x, centred[None])[:, 0]  # (n, H', W')
        sums = F.conv2d(x, masks)[:, 0]
        squares = F.conv2d(x * x, masks)[:, 0]
        spread = (squares - sums * sums / n).clamp_min(1e-6).sqrt()
        correlation = products / (spread * centred.square().sum().sqrt().clamp_min(1e-6))
        best.append(correlation.flatten(1).max(1).values)
    return torch.stack(best, 1)


def _template(picture: np.ndarray, longer: int) -> tuple[Tensor, Tensor]:
    """A catalog picture's product as ``(3, h, w)`` colours in [0, 1] and its ``(1, h, w)``
    mask, its longer side ``longer`` pixels."""
    rgba = cutout(picture)
    scale = longer / max(rgba.shape[:2])
    size = (max(2, round(rgba.shape[1] * scale)), max(2, round(rgba.shape[0] * scale)))
    scaled = np.asarray(Image.fromarray(rgba).resize(size, Image.Resampling.BILINEAR))
    colours = torch.from_numpy(scaled[..., :3].copy()).permute(2, 0, 1).float() / 255
    return colours, torch.from_numpy((scaled[..., 3] > 127).astype(np.float32))[None]


def template_accuracy(crops: Crops) -> float:
    """Share of crops whose best-fitting picture (``template_scores``) is their product's."""
    return crop_accuracy(crops, store_scores(crops, template_scores))


def store_scores(crops: Crops, score: Callable[[Tensor, np.ndarray], Tensor]) -> np.ndarray:
    """``(N, K)``: each crop against each picture of its store, as ``score(crops (n, s, s,
    3), pictures (K, s, s, 3)) → (n, K)`` says (higher: more alike)."""
    out = np.zeros((len(crops.images), crops.catalogs.shape[1]), np.float32)
    for store in np.unique(crops.store):
        rows = np.flatnonzero(crops.store == store)
        out[rows] = score(torch.from_numpy(crops.images[rows]), crops.catalogs[store]).numpy()
    return out


def crop_accuracy(crops: Crops, scores: np.ndarray) -> float:
    """Share of crops whose highest-scoring picture is their product's."""
    return float((scores.argmax(-1) == crops.product).mean())


def episode_accuracy(crops: Crops, scores: np.ndarray, temperature: float = 0.07) -> float:
    """Share of handlings (``Crops.episode``) named right when their crops vote together:
    the sum of each crop's log-softmax over its store's pictures (scores / temperature)."""
    if crops.episode is None:
        return crop_accuracy(crops, scores)
    z = torch.from_numpy(scores / temperature).log_softmax(-1).numpy()  # (N, K)
    hits = []
    for episode in np.unique(crops.episode):
        rows = np.flatnonzero(crops.episode == episode)
        hits.append(z[rows].sum(0).argmax() == crops.product[rows[0]])
    return float(np.mean(hits))


def nearest_picture_accuracy(crops: Crops, describe: Callable[[Tensor], Tensor]) -> float:
    """Share of crops whose most similar picture of their store is their product's, each
    image described as ``describe`` says (``(N, s, s, 3)`` uint8 → ``(N, D)``)."""
    return crop_accuracy(crops, similarity_scores(crops, describe))


def similarity_scores(crops: Crops, describe: Callable[[Tensor], Tensor]) -> np.ndarray:
    """``(N, K)``: each crop's description against its store's pictures' (dot product)."""

    def score(images: Tensor, pictures: np.ndarray) -> Tensor:
        return describe(images) @ describe(torch.from_numpy(pictures)).T

    return store_scores(crops, score)


class CropMatcher(nn.Module):
    """Crops and pictures into one embedding space (cosine similarity)."""

    def __init__(self, dim: int = 128) -> None:
        super().__init__()
        self.body = timm.create_model("mobilenetv3_small_100", pretrained=False, num_classes=0)
        self.embed = nn.LazyLinear(dim)  # timm's pooled width differs by model version

    def forward(self, images: Tensor) -> Tensor:
        """RGB uint8 ``(N, s, s, 3)`` → unit embeddings ``(N, dim)``."""
        x = images.permute(0, 3, 1, 2).float() / 255 - 0.5
        return F.normalize(self.embed(self.body(x)), dim=-1)


def matcher_accuracy(net: CropMatcher, crops: Crops) -> float:
    """Share of crops whose most similar picture (through ``net``) is their product's."""
    return crop_accuracy(crops, matcher_scores(net, crops))


@torch.no_grad()
def matcher_scores(net: CropMatcher, crops: Crops) -> np.ndarray:
    """``(N, K)`` cosine similarities of each crop to its store's pictures through ``net``."""
    net.eval()
    scores = similarity_scores(crops, net)
    net.train()
    return scores


def _accuracies(name: str, crops: Crops, scores: np.ndarray) -> dict[str, float]:
    """Per crop and per handling (its crops voting together), for a log record."""
    return {
        f"{name}_accuracy": round(crop_accuracy(crops, scores), 4),
        f"{name}_handling_accuracy": round(episode_accuracy(crops, scores), 4),
    }


def train_matcher(
    train: Crops,
    val: Crops,
    *,
    epochs: int,
    views: bool,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
    temperature: float = 0.07,
    log: Callable[[dict[str, object]], None] | None = None,
) -> CropMatcher:
    """Each step: ``batch_size`` crops of one store against that store's pictures."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = CropMatcher()
    net(torch.from_numpy(train.images[:2]))  # shape the lazy layer before the optimizer
    optimizer = torch.optim.AdamW(net.parameters(), lr, weight_decay=0.05)
    per_epoch = max(1, len(train.images) // batch_size)
    total = epochs * per_epoch
    for epoch in range(epochs):
        began, loss_sum = time.perf_counter(), 0.0
        for step in range(per_epoch):
            for group in optimizer.param_groups:  # cosine decay
                group["lr"] = (
                    lr * 0.5 * (1 + math.cos(math.pi * (epoch * per_epoch + step) / total))
                )
            store = int(rng.integers(train.store.max() + 1))
            mine = np.flatnonzero(train.store == store)
            rows = rng.choice(mine, batch_size, replace=len(mine) < batch_size)
            pictures = train.catalogs[store]
            if views:
                pictures = prototype_views(pictures, rng)
            similarity = (
                net(torch.from_numpy(train.images[rows])) @ net(torch.from_numpy(pictures)).T
            )
            loss = F.cross_entropy(similarity / temperature, torch.from_numpy(train.product[rows]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
        if log is not None:
            log(
                {
                    "epoch": epoch + 1,
                    "train_loss": round(loss_sum / per_epoch, 4),
                    **_accuracies("val", val, matcher_scores(net, val)),
                    "seconds": round(time.perf_counter() - began, 1),
                }
            )
    return net


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--train", type=Path, help="a dataset whose stores train the matcher")
    source.add_argument(
        "--sampled-stores", type=int, help="train on this many never-filmed stores instead"
    )
    parser.add_argument("--sampled-seconds", type=int, default=60)
    parser.add_argument("--sampled-seed", type=int, default=9176)
    parser.add_argument("--workers", type=int, default=1, help="processes rendering them")
    parser.add_argument("--val", type=Path, required=True, help="stores the matcher never sees")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--views", action="store_true", help="train on views of the pictures")
    parser.add_argument(
        "--resolution", type=float, default=1.0, help="read frames at this share of a side"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.train is not None:
        train = load_crops(read_dataset(args.train), resolution=args.resolution)
    else:  # rendered at the source resolution only
        train = sampled_crops(
            args.sampled_stores, args.sampled_seconds, args.sampled_seed, workers=args.workers
        )
    val = load_crops(read_dataset(args.val), resolution=args.resolution)

    def emit(record: dict[str, object]) -> None:
        print(json.dumps(record), file=sys.stdout, flush=True)

    emit(
        {
            "train_crops": len(train.images),
            "train_stores": int(train.store.max()) + 1,
            "val_crops": len(val.images),
            "resolution": args.resolution,
            "views": args.views,
            "val_handlings": len(np.unique(val.episode)) if val.episode is not None else None,
            **_accuracies("colour_val", val, similarity_scores(val, colour_histogram)),
            **_accuracies("template_val", val, store_scores(val, template_scores)),
        }
    )
    train_matcher(train, val, epochs=args.epochs, views=args.views, seed=args.seed, log=emit)


if __name__ == "__main__":
    main()
