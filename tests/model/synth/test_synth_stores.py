"""Multi-store datasets: a catalog per store, splits by store, determinism per seed."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.synth import SPLITS, DatasetError, SynthConfig, SynthConfigError, read_dataset
from model.synth.catalog import make_store_catalog
from model.synth.generate import plan_store_videos
from model.synth.video import VideoPlan, build_world
from tests.model.synth.conftest import SEED, STORES, TINY


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_each_store_has_its_own_catalog_and_split(store_data) -> None:
    ds = store_data.dataset
    assert list(ds.stores) == ["S001", "S002", "S003"]
    assert [ds.stores[s].split for s in ds.stores] == ["train", "val", "test"]
    skus = [set(store.skus) for store in ds.stores.values()]
    assert all(len(s) == TINY.num_skus for s in skus)
    assert not any(a & b for a, b in itertools.combinations(skus, 2))
    assert {e.sku for e in ds.catalog} == set().union(*skus)
    images = {
        e.sku: np.asarray(Image.open(ds.image_path(e.sku)), np.float32)[::2, ::2]
        for e in ds.catalog
    }
    store_of = {sku: store for store in ds.stores.values() for sku in store.skus}
    for a, b in itertools.combinations(images, 2):
        if store_of[a] != store_of[b]:
            assert np.abs(images[a] - images[b]).mean() > 8.0, f"{a} and {b} look alike"


def test_held_out_stores_share_no_product_with_training_or_tuning(store_data) -> None:
    ds = store_data.dataset
    held_out = {sku for s in ds.stores.values() if s.split == "test" for sku in s.skus}
    assert held_out
    for video_id, video in ds.videos.items():
        store = ds.store_of(video_id)
        assert store is not None and store.store == video.store and store.split == video.split
        shown = {s.sku for s in video.spans} | {b.sku for b in video.boxes} | set(video.basket)
        world = build_world(
            VideoPlan(video_id, video.split, video.seed or 0, video.num_frames, video.store),
            make_store_catalog(SEED, int(store.store[1:]) - 1, TINY.num_skus),
            TINY,
        )
        shown |= {f.sku for f in world.store.facings}  # everything on its shelves
        shown |= {c.sku for c in world.distractors.crossings if c.sku}  # carried past
        assert shown <= set(store.skus), video_id
        if video.split != "test":
            assert not shown & held_out, video_id
    for split in ("train", "val"):
        assert not {q.sku for q in ds.queries[split]} & held_out
    assert {q.sku for q in ds.queries["test"]} <= held_out


def test_reader_gives_each_video_its_store(store_data) -> None:
    ds = store_data.dataset
    assert {split: len(ds.splits[split]) for split in SPLITS} == {"train": 2, "val": 2, "test": 2}
    assert ds.splits["test"] == ("test-S003-0000", "test-S003-0001")
    for video_id, video in ds.videos.items():
        raw = json.loads((store_data.root / "annotations" / f"{video_id}.json").read_text())
        assert raw["store"] == video.store == video_id.split("-")[1]
        assert ds.skus_of(video_id) == ds.stores[video.store].skus
    meta = json.loads((store_data.root / "dataset.json").read_text())
    assert [s["store"] for s in meta["stores"]] == ["S001", "S002", "S003"]


def test_single_store_files_keep_the_first_format(synth_data) -> None:
    assert "stores" not in json.loads((synth_data.root / "dataset.json").read_text())
    for video_id in synth_data.dataset.videos:
        raw = json.loads((synth_data.root / "annotations" / f"{video_id}.json").read_text())
        assert "store" not in raw
        assert synth_data.dataset.store_of(video_id) is None
    assert synth_data.dataset.skus_of(video_id) == tuple(e.sku for e in synth_data.dataset.catalog)


def test_same_seed_same_files_other_seed_other_stores(
    store_data, store_data_again, store_data_other_seed
) -> None:
    first, second = _files(store_data.root), _files(store_data_again.root)
    assert first.keys() == second.keys()
    assert [n for n in first if first[n] != second[n]] == []  # PNGs and MP4s included
    other = _files(store_data_other_seed.root)
    assert other.keys() == first.keys()  # same ids: S001-0001 ... in both
    for name in first:
        if name.startswith(("catalog/", "annotations/", "videos/")):
            assert first[name] != other[name], name


def test_worker_processes_draw_the_same_dataset_byte_for_byte(
    store_data, store_data_in_three_processes
) -> None:
    first, parallel = _files(store_data.root), _files(store_data_in_three_processes.root)
    assert parallel.keys() == first.keys()
    assert [n for n in first if first[n] != parallel[n]] == []  # PNGs and MP4s included
    # progress still counts every frame, ending at the total, one call per finished video
    calls = store_data_in_three_processes.progress
    total = calls[-1][1]
    assert calls[-1] == (total, total) and len(calls) == 6
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_reader_refuses_a_video_outside_its_stores_split(store_data, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(store_data.root, root)
    meta = json.loads((root / "dataset.json").read_text())
    meta["stores"][2]["split"] = "train"
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="S003"):
        read_dataset(root)
    meta["stores"] = meta["stores"][:2]
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="S003"):
        read_dataset(root)


def test_store_plans_split_by_store_and_grow_without_changing() -> None:
    config = SynthConfig()
    plans = plan_store_videos(videos=45, minutes=1, seed=4, stores=20, config=config)
    by_split = {s: {p.store for p in plans if p.split == s} for s in SPLITS}
    assert [len(by_split[s]) for s in SPLITS] == [14, 3, 3]
    assert by_split["test"] == {"S018", "S019", "S020"}
    assert len({p.seed for p in plans}) == len(plans) == 45
    assert {len([p for p in plans if p.store == s]) for s in set().union(*by_split.values())} == {
        2,
        3,
    }
    more = plan_store_videos(videos=60, minutes=1, seed=4, stores=20, config=config)
    assert {(p.video_id, p.seed) for p in plans} <= {(p.video_id, p.seed) for p in more}
    held = plan_store_videos(videos=20, minutes=1, seed=4, stores=20, config=SynthConfig.held_out())
    # All stores in test: sessions no train or val video used (a test store's are its own).
    assert not {p.seed for p in held} & {p.seed for p in more if p.split != "test"}
    with pytest.raises(SynthConfigError, match="per store"):
        plan_store_videos(videos=STORES - 1, minutes=1, seed=4, stores=STORES, config=config)
