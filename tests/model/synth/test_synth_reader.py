"""read_dataset: round trip of what the generator wrote, and errors for broken datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.synth import (
    ACTIVITIES,
    SPLITS,
    DatasetError,
    QueryConfig,
    VideoConfig,
    decode_video,
    make_queries,
    query_from_json,
    query_to_json,
    read_dataset,
)
from model.synth.video_io import VideoWriter


def test_round_trip_matches_the_files(synth_data) -> None:
    ds = synth_data.dataset
    assert ds.activities == ACTIVITIES
    assert [e.sku for e in ds.catalog] == [
        f"SKU-{i:04d}" for i in range(1, synth_data.config.num_skus + 1)
    ]
    for video_id, annotation in ds.videos.items():
        raw = json.loads((synth_data.root / "annotations" / f"{video_id}.json").read_text())
        assert annotation.to_json() == raw
        assert ds.video_path(video_id).is_file()
    for split in SPLITS:
        lines = (synth_data.root / "queries" / f"{split}.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in lines] == [query_to_json(q) for q in ds.queries[split]]
        assert all(query_from_json(query_to_json(q)) == q for q in ds.queries[split])
    assert ds.catalog_entry("SKU-0002").image == "catalog/SKU-0002.png"
    assert len(ds.videos_in("train")) == 1


@pytest.fixture
def copy(synth_data, tmp_path: Path) -> Path:
    """A writable copy of the synth_data dataset without its (large) videos re-copied twice."""
    root = tmp_path / "copy"
    shutil.copytree(synth_data.root, root)
    return root


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no dataset\.json"):
        read_dataset(tmp_path)


def test_unknown_format_version(copy: Path) -> None:
    meta = json.loads((copy / "dataset.json").read_text())
    meta["format_version"] = 99
    (copy / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="version 99"):
        read_dataset(copy)


def test_missing_video_file(copy: Path) -> None:
    (copy / "videos" / "val-0000.mp4").unlink()
    with pytest.raises(DatasetError, match="val-0000"):
        read_dataset(copy)


def test_missing_reference_image(copy: Path) -> None:
    (copy / "catalog" / "SKU-0003.png").unlink()
    with pytest.raises(DatasetError, match="SKU-0003"):
        read_dataset(copy)


def test_query_about_an_unknown_product(copy: Path) -> None:
    path = copy / "queries" / "test.jsonl"
    first = json.loads(path.read_text().splitlines()[0])
    first["given"]["sku"] = "SKU-9999"
    path.write_text(json.dumps(first) + "\n")
    with pytest.raises(DatasetError, match="SKU-9999"):
        read_dataset(copy)


def test_span_with_unknown_activity(copy: Path) -> None:
    path = copy / "annotations" / "train-0000.json"
    data = json.loads(path.read_text())
    data["spans"][0]["activity"] = "juggle"
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="juggle"):
        read_dataset(copy)


def test_a_hand_converted_dataset_reads_and_gets_queries(tmp_path: Path) -> None:
    """What docs/DATASET.md asks of someone converting real labels is enough."""
    root = tmp_path / "real"
    (root / "videos").mkdir(parents=True)
    (root / "catalog").mkdir()
    (root / "annotations").mkdir()
    config = VideoConfig(width=64, height=48, fps=6, box_fps=2, keyframe_seconds=1.0)
    with VideoWriter(root / "videos" / "shop-1.mp4", config) as writer:
        for _ in range(6 * 20):
            writer.write(np.zeros((48, 64, 3), np.uint8))
    for sku in ("A-1", "B-2"):
        Image.new("RGB", (32, 32), (200, 10, 10)).save(root / "catalog" / f"{sku}.png")
    catalog = [
        {"sku": s, "name": s, "price": None, "image": f"catalog/{s}.png"} for s in ("A-1", "B-2")
    ]
    (root / "catalog.json").write_text(json.dumps({"skus": catalog}))
    spans = [
        {"activity": "take_from_shelf", "sku": "A-1", "start": 2.3, "end": 4.1},
        {"activity": "put_in_cart", "sku": "A-1", "start": 4.1, "end": 6.0},
        {"activity": "take_from_shelf", "sku": "B-2", "start": 11.0, "end": 13.5},
    ]
    boxes = [
        {"t": t / 2, "activity": s["activity"], "sku": s["sku"], "box": [0.5, 0.5, 0.3, 0.4]}
        for s in spans
        for t in range(int(np.ceil(s["start"] * 2)), int(np.ceil(s["end"] * 2)))
    ]
    annotation = {
        "video_id": "shop-1", "split": "train", "video": "videos/shop-1.mp4",
        "width": 64, "height": 48, "fps": 6, "num_frames": 120, "duration": 20.0,
        "box_fps": 2, "seed": None, "generator": None,
        "spans": spans, "boxes": boxes, "basket": {"A-1": 1},
    }  # fmt: skip
    (root / "annotations" / "shop-1.json").write_text(json.dumps(annotation))
    meta = {"format_version": 1, "activities": list(ACTIVITIES), "splits": {"train": ["shop-1"]}}
    (root / "dataset.json").write_text(json.dumps(meta))

    data = read_dataset(root)
    assert data.queries == {"train": ()}
    assert decode_video(data.video_path("shop-1"), 1).shape == (20, 48, 64, 3)
    rng = np.random.default_rng(0)
    config_q = QueryConfig(short_seconds=(3, 8), medium_seconds=(8, 14), long_seconds=(14, 20))
    made = make_queries(data.videos["shop-1"], [e.sku for e in data.catalog], rng, config_q)
    (root / "queries").mkdir()
    lines = "".join(json.dumps(query_to_json(q)) + "\n" for q in made)
    (root / "queries" / "train.jsonl").write_text(lines)
    again = read_dataset(root)
    assert again.queries["train"] == tuple(made)
    assert {q.kind for q in made} == {"activity", "object", "time"}
