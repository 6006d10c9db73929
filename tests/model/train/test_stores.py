"""Training on a multi-store dataset: every product a video's training example uses is
its store's, pretraining matches tokens to their store's catalog images, and a short run learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model import LongVMNet, ModelConfig
from model.synth import read_dataset
from model.train import TrainConfig
from model.train.pretrain_backbone import (
    NONE,
    PretrainConfig,
    _batch,
    _Heads,
    composite_backgrounds,
    load_frames,
    pretrain_backbone,
    store_catalogs,
)
from tests.model.train.test_train import train_and_measure


def test_store_catalogs_are_each_stores_own_products(store_dataset: Path) -> None:
    dataset = read_dataset(store_dataset)
    catalogs = store_catalogs(dataset)
    assert catalogs.skus == tuple(e.sku for e in dataset.catalog)
    assert len(catalogs.sold) == len(dataset.stores)
    for rows, store in zip(catalogs.sold, dataset.stores.values(), strict=True):
        assert {catalogs.skus[k] for k in rows} == set(store.skus)
    assert (
        catalogs.local(0, np.array([catalogs.sold[0][2], NONE])) == [2, len(catalogs.sold[0])]
    ).all()


def test_every_pretraining_product_is_one_its_frames_store_sells(
    store_dataset: Path, small_cfg: ModelConfig
) -> None:
    dataset = read_dataset(store_dataset)
    catalogs = store_catalogs(dataset)
    frames = load_frames(dataset, "train", small_cfg, catalogs)
    handled = frames.sku != NONE
    assert handled.any()
    for sku, store in zip(frames.sku[handled], frames.store[handled], strict=True):
        assert sku in catalogs.sold[store]  # video frames: their store's products
    assert set(frames.store.tolist()) == {0, 1}
    backgrounds = composite_backgrounds(frames, len(catalogs.sold))
    rng = np.random.default_rng(0)
    config = PretrainConfig(batch_size=4, composites=64)
    catalog = np.full((len(catalogs.skus), 32, 32, 3), 200, np.uint8)  # only labels matter
    rows = np.flatnonzero(frames.store == 1)[:4]
    batch = _batch(frames, rows, 1, catalogs, catalog, backgrounds, rng, config, (4, 4))
    pasted = batch.product[4:].numpy()
    own = len(catalogs.sold[1])
    assert (pasted < own).all() and len(set(pasted.tolist())) > own // 2  # the store's own
    assert (batch.product[:4].numpy() == catalogs.local(1, frames.sku[rows])).all()
    # validation stores' products are in the catalog too: their match is measurable
    val = load_frames(dataset, "val", small_cfg, catalogs)
    assert set(val.sku[val.sku != NONE].tolist()) <= set(catalogs.sold[2].tolist())


def test_product_logits_come_from_the_catalog_images_not_a_table_of_skus() -> None:
    torch.manual_seed(0)
    heads = _Heads(channels=8, match_dim=4, num_activities=2)
    catalog = torch.randn(3, 2, 8)  # three products, two cells each
    logits = heads.product_logits(catalog, catalog, temperature=0.1)  # (3, 2, 4)
    assert logits.shape == (3, 2, 4)
    # a product's own image pooled is its prototype: each catalog image matches itself best
    pooled = heads.product_logits(catalog.mean(1, keepdim=True), catalog, 0.1)[:, 0, :3]
    assert (pooled.argmax(-1) == torch.arange(3)).all()
    # a new catalog, never seen, is answered the same way (no per-SKU weights exist)
    other = torch.randn(5, 2, 8)
    assert heads.product_logits(other, other, 0.1).shape == (5, 2, 6)


def test_pretraining_on_stores_measures_match_on_unseen_stores_and_seeds_the_answer(
    store_dataset: Path, tmp_path: Path
) -> None:
    records: list[dict] = []
    config = PretrainConfig(epochs=1, batch_size=8, composites=8, seed=0)
    out = pretrain_backbone(store_dataset, tmp_path / "backbone", config, log=records.append)
    (record,) = records
    assert all(np.isfinite(v) for v in record["train_loss"].values())
    assert record["train_accuracy"]["product"] is not None
    assert 0.0 <= record["val_accuracy"]["product"] <= 1.0  # a store never trained on
    assert 0.0 <= record["val_accuracy"]["activity"] <= 1.0
    # on the cells that show the product (the small dataset annotates boxes)
    assert 0.0 <= record["val_accuracy"]["product_handled"] <= 1.0
    net = LongVMNet.load(out)
    assert net.encoder_decoder.match is not None
    fresh = LongVMNet(net.cfg)
    assert not torch.equal(
        net.encoder_decoder.match.embed.weight, fresh.encoder_decoder.match.embed.weight
    )


def test_one_epoch_on_stores_lowers_the_loss(
    store_dataset: Path, small_overrides: dict, tmp_path: Path
) -> None:
    config = TrainConfig(epochs=1, batch_size=2, lr_sampler=1e-2, lr_rest=1e-2, warmup=0.0)
    before, after, lines, _ = train_and_measure(store_dataset, config, small_overrides, tmp_path)
    assert [r["epoch"] for r in lines] == [1] and "recall@1x" in lines[0]["val"]
    assert after < 0.8 * before, (before, after)
