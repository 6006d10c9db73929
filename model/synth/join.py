"""Join two multi-store datasets: train on one's stores, validate on the other's.

Backbone pretraining measures how well a token matches products it never saw on a
dataset's validation stores. To compare runs with more or fewer training stores on the
*same* validation stores, the training stores come from one draw (``--train``, e.g.
``cartmem synth --stores 166 --split 1,0,0``) and the validation stores from another
(``--val``): the joined dataset holds the first's training videos, less those of any store
that shares a product with the validation stores (with the same seed, store ``S011`` of
both draws is the same catalog), and the second's validation videos.

Files are hard-linked where the file system allows (copied otherwise), so the joined
dataset does not depend on the two staying where they are. Run::

    python -m model.synth.join --train A --val B --out OUT
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from model.synth.errors import DatasetError
from model.synth.generate import write_json
from model.synth.reader import read_dataset

SPLITS = ("train", "val", "test")


def join_datasets(train: Path, val: Path, out: Path) -> tuple[int, int]:
    """Write the joined dataset to ``out``: (training videos, validation videos)."""
    a, b = read_dataset(train), read_dataset(val)
    if not a.stores or not b.stores:
        raise DatasetError("Joining needs two multi-store datasets (cartmem synth --stores N).")
    if out.exists():
        raise DatasetError(f"{out} exists; joining never writes over a dataset.")
    val_stores = {b.videos[v].store for v in b.splits.get("val", ())}
    val_skus = {sku for s in val_stores if s is not None for sku in b.stores[s].skus}
    # a store with a validation product's id (the same store of the same seed, or one
    # that would give an id two looks) stays out
    train_ids = [v for v in a.splits.get("train", ()) if not set(a.skus_of(v)) & val_skus]
    val_ids = list(b.splits.get("val", ()))
    kept_stores = {a.videos[v].store for v in train_ids}
    train_skus = {sku for s in kept_stores if s is not None for sku in a.stores[s].skus}

    meta_a, meta_b = (_load(root / "dataset.json") for root in (train, val))
    for sub in ("annotations", "videos", "catalog", "queries"):
        (out / sub).mkdir(parents=True)
    for ids, src in ((train_ids, a), (val_ids, b)):
        for v in ids:
            _link(src.root / "annotations" / f"{v}.json", out / "annotations")
            _link(src.video_path(v), out / "videos")
    catalog = [e for e in _load(train / "catalog.json")["skus"] if e["sku"] in train_skus] + [
        e for e in _load(val / "catalog.json")["skus"] if e["sku"] in val_skus
    ]
    for entry in catalog:
        root = val if entry["sku"] in val_skus else train
        _link(root / entry["image"], out / Path(entry["image"]).parent)
    write_json(out / "catalog.json", {"skus": catalog})
    stores = [s for s in meta_a["stores"] if s["store"] in kept_stores and s["split"] == "train"]
    stores += [s for s in meta_b["stores"] if s["store"] in val_stores]
    kinds = meta_a["query_counts"]["train"]  # {kind: {bucket: n}}: every kind and bucket
    counts = {split: {k: dict.fromkeys(b, 0) for k, b in kinds.items()} for split in SPLITS}
    _copy_queries(train, out, "train", set(train_ids), counts["train"])
    _copy_queries(val, out, "val", set(val_ids), counts["val"])
    (out / "queries" / "test.jsonl").write_text("")
    splits = {"train": train_ids, "val": val_ids, "test": []}
    write_json(
        out / "dataset.json",
        {**meta_a, "splits": splits, "stores": stores, "query_counts": counts},
    )
    read_dataset(out)  # the joined dataset passes every check a training run makes
    return len(train_ids), len(val_ids)


def _copy_queries(
    source: Path, out: Path, split: str, videos: set[str], counts: dict[str, dict[str, int]]
) -> None:
    """The split's queries about ``videos``, counted by kind and bucket into ``counts``."""
    kept = []
    for line in (source / "queries" / f"{split}.jsonl").read_text().splitlines(keepends=True):
        query = json.loads(line)
        if query["video_id"] in videos:
            kept.append(line)
            counts[query["kind"]][query["bucket"]] += 1
    (out / "queries" / f"{split}.jsonl").write_text("".join(kept))


def _link(source: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, target)


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="its training stores")
    parser.add_argument("--val", type=Path, required=True, help="its validation stores")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        trained, validated = join_datasets(args.train, args.val, args.out)
    except DatasetError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"{args.out}: {trained} training videos, {validated} validation videos")


if __name__ == "__main__":
    main()
