"""One split of a dataset, ready for the model: cached tokens and examples per video."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from model.config import ModelConfig
from model.data.examples import Example, check_activities, make_example
from model.data.handled import handled_map
from model.data.swapped import swapped_twins
from model.data.token_cache import TokenCache
from model.synth.errors import DatasetError
from model.synth.reader import Dataset

#: ``progress(done, total)``, called after each video.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SplitData:
    """Videos of one split: tokens ``(N, S, C)`` and examples in the order of their window
    end (the order a memory that reads the video once can answer them); ``handled``: the
    ``(N, S)`` bool cells showing the handled product, for videos annotated with boxes."""

    split: str
    tokens: dict[str, Tensor]
    examples: dict[str, tuple[Example, ...]]
    handled: dict[str, Tensor] = field(default_factory=dict)

    @property
    def video_ids(self) -> tuple[str, ...]:
        return tuple(self.tokens)

    def num_examples(self) -> int:
        return sum(len(e) for e in self.examples.values())


def load_catalog_images(
    dataset: Dataset, skus: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """SKU → reference image as RGB uint8 ``(H, W, 3)``: of ``skus`` (catalog order), or of
    the whole catalog."""
    wanted = None if skus is None else set(skus)
    images = {}
    for entry in dataset.catalog:
        if wanted is not None and entry.sku not in wanted:
            continue
        with Image.open(dataset.image_path(entry.sku)) as image:
            images[entry.sku] = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    return images


def load_split(
    dataset: Dataset,
    split: str,
    cfg: ModelConfig,
    cache: TokenCache,
    *,
    swap_fraction: float = 0.0,
    progress: Progress | None = None,
) -> SplitData:
    """Tokens (through ``cache``) and examples of every video in ``split``.

    A video's examples see only its store's products (``Dataset.skus_of``): in a
    multi-store dataset a query about another store's product is refused, not answered
    with that product's image. ``swap_fraction`` of the positive activity queries get a
    swapped-product twin (``model.data.swapped``).
    """
    if split not in dataset.splits:
        raise DatasetError(
            f"{dataset.root} has no split {split!r}; it has {', '.join(dataset.splits)}."
        )
    check_activities(cfg, dataset.activities)
    by_video: dict[str, list] = {v: [] for v in dataset.splits[split]}
    images = load_catalog_images(dataset, {s for v in by_video for s in dataset.skus_of(v)})
    for record in dataset.queries.get(split, ()):
        by_video[record.video_id].append(record)
    tokens: dict[str, Tensor] = {}
    examples: dict[str, tuple[Example, ...]] = {}
    handled: dict[str, Tensor] = {}
    for done, video_id in enumerate(by_video, start=1):
        tokens[video_id] = cache.tokens(dataset.video_path(video_id))
        steps = tokens[video_id].shape[0]
        sold = {sku: images[sku] for sku in dataset.skus_of(video_id)}
        records = by_video[video_id]
        records += swapped_twins(dataset.videos[video_id], records, tuple(sold), swap_fraction)
        spans = dataset.videos[video_id].spans
        made = [make_example(r, cfg, steps, sold, spans) for r in records]
        examples[video_id] = tuple(sorted(made, key=lambda e: (e.last_step, e.record.query_id)))
        cells = handled_map(dataset.videos[video_id], steps, cfg)
        if cells is not None:
            handled[video_id] = torch.from_numpy(cells)
        if progress is not None:
            progress(done, len(by_video))
    return SplitData(split, tokens, examples, handled)
