"""Training on a multi-store dataset: every product a video's training example uses is
its store's, pretraining classifies within a store, and a short run learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model import ModelConfig
from model.synth import read_dataset
from model.train import TrainConfig
from model.train.pretrain_backbone import (
    PretrainConfig,
    _batch,
    composite_backgrounds,
    load_frames,
    pretrain_backbone,
    product_classes,
)
from tests.model.train.test_train import train_and_measure


def test_pretraining_classes_are_the_training_stores_products(store_dataset: Path) -> None:
    dataset = read_dataset(store_dataset)
    classes = product_classes(dataset, "train")
    train_stores = [s for s in dataset.stores.values() if s.split == "train"]
    assert classes.skus == tuple(sku for s in train_stores for sku in s.skus)
    assert classes.sold is not None and classes.sold.shape == (3, len(classes.skus) + 1)
    for row, store in enumerate(dataset.stores.values()):
        sold = {classes.skus[k] for k in np.flatnonzero(classes.sold[row, :-1])}
        assert sold == (set(store.skus) if store.split == "train" else set())
        assert classes.sold[row, -1]  # "none" everywhere


def test_every_pretraining_product_is_one_its_frames_store_sells(
    store_dataset: Path, small_cfg: ModelConfig
) -> None:
    dataset = read_dataset(store_dataset)
    classes = product_classes(dataset, "train")
    assert classes.sold is not None
    frames = load_frames(dataset, "train", small_cfg, classes)
    none = len(classes.skus)
    handled = frames.sku < none
    assert handled.any() and (frames.sku >= 0).all()
    assert classes.sold[frames.store, frames.sku].all()  # video frames: their store's
    assert set(frames.store.tolist()) == {0, 1}
    empty = np.flatnonzero(frames.sku == none)
    backgrounds = composite_backgrounds(frames, empty, classes)
    rng = np.random.default_rng(0)
    config = PretrainConfig(batch_size=4, composites=64)
    catalog = [np.full((32, 32, 3), 200, np.uint8)] * none  # plain: only the labels matter
    _, sku, _, _, store = _batch(frames, empty[:4], catalog, backgrounds, rng, config, (4, 4))
    pasted, where = sku[4:].numpy(), store[4:]
    assert len(set(pasted.tolist())) > none // 2
    assert classes.sold[where, pasted].all()  # pasted on a frame of a store that sells it
    val = load_frames(dataset, "val", small_cfg, classes)
    assert (val.sku[val.sku != none] == -1).all()  # validation stores' products: no class


def test_pretraining_on_stores_runs_and_leaves_held_out_products_unmeasured(
    store_dataset: Path, tmp_path: Path
) -> None:
    records: list[dict] = []
    config = PretrainConfig(epochs=1, batch_size=8, composites=8, seed=0)
    pretrain_backbone(store_dataset, tmp_path / "backbone", config, log=records.append)
    (record,) = records
    assert all(np.isfinite(v) for v in record["train_loss"].values())
    assert record["train_accuracy"]["product"] is not None
    assert record["val_accuracy"]["product"] is None
    assert 0.0 <= record["val_accuracy"]["activity"] <= 1.0


def test_one_epoch_on_stores_lowers_the_loss(
    store_dataset: Path, small_overrides: dict, tmp_path: Path
) -> None:
    config = TrainConfig(epochs=1, batch_size=2, lr_sampler=1e-2, lr_rest=1e-2, warmup=0.0)
    before, after, lines, _ = train_and_measure(store_dataset, config, small_overrides, tmp_path)
    assert [r["epoch"] for r in lines] == [1] and "recall@1x" in lines[0]["val"]
    assert after < 0.8 * before, (before, after)
