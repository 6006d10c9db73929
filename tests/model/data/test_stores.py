"""Multi-store datasets: a video's examples use only the products of its own store."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from model import ActivityQuery, ModelConfig, ObjectQuery, TimeQuery
from model.data import TokenCache, load_catalog_images, load_split, make_example
from model.network import LongVMNet
from model.synth import read_dataset
from model.synth.errors import DatasetError
from model.synth.records import ActivityQueryRecord


def test_each_example_asks_about_its_videos_store_with_that_products_image(
    store_dataset: Path, small_cfg: ModelConfig, tmp_path: Path
) -> None:
    dataset = read_dataset(store_dataset)
    images = load_catalog_images(dataset)
    net = LongVMNet(small_cfg)
    asked = 0
    for split in ("train", "val"):
        data = load_split(dataset, split, small_cfg, TokenCache(tmp_path, small_cfg, net.backbone))
        for video_id, examples in data.examples.items():
            sold = set(dataset.skus_of(video_id))
            assert sold == set(dataset.stores[video_id.split("-")[1]].skus)
            for example in examples:
                query, sku = example.query, example.record.sku
                assert sku in sold  # asked about (or, object queries, answered with)
                if isinstance(query, ObjectQuery):
                    continue
                assert isinstance(query, ActivityQuery | TimeQuery)
                # the object image is that product's catalog image, so of the same store
                same = [s for s, im in images.items() if np.array_equal(im, query.object_image)]
                assert same == [sku]
                asked += 1
    assert asked > 20
    assert len(dataset.stores) == 3


def test_a_query_about_another_stores_product_is_refused(
    store_dataset: Path, small_cfg: ModelConfig
) -> None:
    dataset = read_dataset(store_dataset)
    record = next(q for q in dataset.queries["train"] if isinstance(q, ActivityQueryRecord))
    store = dataset.store_of(record.video_id)
    assert store is not None
    other = next(s for s in dataset.stores.values() if s.store != store.store).skus[0]
    images = load_catalog_images(dataset, dataset.skus_of(record.video_id))
    assert set(images) == set(store.skus)
    assert make_example(record, small_cfg, 30, images).query.end <= 30
    with pytest.raises(DatasetError, match=f"asks about {other}, which is not one of"):
        make_example(dataclasses.replace(record, sku=other), small_cfg, 30, images)


def test_catalog_images_load_only_the_skus_asked_for_in_catalog_order(
    store_dataset: Path,
) -> None:
    dataset = read_dataset(store_dataset)
    everything = load_catalog_images(dataset)
    assert list(everything) == [e.sku for e in dataset.catalog]
    some = load_catalog_images(dataset, ["S002-0003", "S001-0002"])
    assert list(some) == ["S001-0002", "S002-0003"]
    assert all(np.array_equal(some[s], everything[s]) for s in some)
