"""``read_dataset``: a dataset directory (synthetic or converted) as typed records.

Checks what a training run would otherwise trip over much later: the format version,
that every listed video has its annotation and MP4, that every SKU has its image, and
that labels and ids in queries refer to things that exist. In a multi-store dataset it
also checks that each video's store is listed, lies in the store's split, and shows and
asks about only that store's products.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.synth.config import FORMAT_VERSION
from model.synth.errors import DatasetError
from model.synth.records import (
    CatalogEntry,
    ObjectQueryRecord,
    QueryRecord,
    StoreRecord,
    TimeQueryRecord,
    VideoAnnotation,
    query_from_json,
)


@dataclass(frozen=True)
class Dataset:
    """A whole dataset in memory (annotations and queries; videos stay on disk)."""

    root: Path
    format_version: int
    generator: str | None
    activities: tuple[str, ...]
    catalog: tuple[CatalogEntry, ...]
    videos: dict[str, VideoAnnotation]  # by video id
    splits: dict[str, tuple[str, ...]]  # split -> video ids
    queries: dict[str, tuple[QueryRecord, ...]]  # split -> queries
    stores: dict[str, StoreRecord] = field(default_factory=dict)  # by id; {}: one store

    def store_of(self, video_id: str) -> StoreRecord | None:
        """The store the video was shot in; None in a single-store dataset."""
        store = self.videos[video_id].store
        return None if store is None else self.stores[store]

    def skus_of(self, video_id: str) -> tuple[str, ...]:
        """The products the video's store sells: its store's SKUs, or the whole catalog."""
        store = self.store_of(video_id)
        return tuple(e.sku for e in self.catalog) if store is None else store.skus

    def video_path(self, video_id: str) -> Path:
        return self.root / self.videos[video_id].video

    def image_path(self, sku: str) -> Path:
        return self.root / self.catalog_entry(sku).image

    def catalog_entry(self, sku: str) -> CatalogEntry:
        for entry in self.catalog:
            if entry.sku == sku:
                return entry
        raise KeyError(sku)

    def videos_in(self, split: str) -> tuple[VideoAnnotation, ...]:
        return tuple(self.videos[v] for v in self.splits.get(split, ()))


def read_dataset(root: Path) -> Dataset:
    """Read and check the dataset at ``root``; raises ``DatasetError`` with what is wrong."""
    root = Path(root)
    meta = _load(root / "dataset.json", "is not a cartmem dataset (no dataset.json)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetError(
            f"{root} has dataset format version {version!r}; this cartmem reads version "
            f"{FORMAT_VERSION}."
        )
    activities = tuple(meta.get("activities", ()))
    if not activities:
        raise DatasetError(f"{root}/dataset.json lists no activities.")

    catalog_json = _load(root / "catalog.json", "has no catalog.json")
    try:
        catalog = tuple(CatalogEntry.from_json(e) for e in catalog_json["skus"])
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"{root}/catalog.json is malformed: missing {exc}.") from None
    skus = {entry.sku for entry in catalog}
    for entry in catalog:
        if not (root / entry.image).is_file():
            raise DatasetError(f"Reference image {entry.image} of {entry.sku} is missing.")

    stores = _read_stores(root, meta, skus)
    splits = {str(s): tuple(ids) for s, ids in meta.get("splits", {}).items()}
    videos: dict[str, VideoAnnotation] = {}
    for split, ids in splits.items():
        for video_id in ids:
            videos[video_id] = _read_video(root, video_id, split, activities, skus, stores)

    queries = {
        split: _read_queries(root, split, videos, activities, skus, stores) for split in splits
    }
    return Dataset(
        root=root,
        format_version=int(version),
        generator=meta.get("generator"),
        activities=activities,
        catalog=catalog,
        videos=videos,
        splits=splits,
        queries=queries,
        stores=stores,
    )


def _read_stores(root: Path, meta: dict[str, Any], skus: set[str]) -> dict[str, StoreRecord]:
    try:
        records = [StoreRecord.from_json(d) for d in meta.get("stores", [])]
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"{root}/dataset.json has a malformed store: missing {exc}.") from None
    stores = {record.store: record for record in records}
    if len(stores) != len(records):
        raise DatasetError(f"{root}/dataset.json lists a store twice.")
    for record in records:
        unknown = sorted(set(record.skus) - skus)
        if unknown:
            raise DatasetError(f"Store {record.store} sells {unknown[0]!r}, not in the catalog.")
    return stores


def _read_video(
    root: Path,
    video_id: str,
    split: str,
    activities: tuple[str, ...],
    skus: set[str],
    stores: dict[str, StoreRecord],
) -> VideoAnnotation:
    path = root / "annotations" / f"{video_id}.json"
    data = _load(path, f"has no annotation for video {video_id}")
    try:
        annotation = VideoAnnotation.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path} is malformed: {exc!r}.") from None
    if annotation.video_id != video_id or annotation.split != split:
        raise DatasetError(f"{path} says it is {annotation.video_id} in {annotation.split}.")
    if not (root / annotation.video).is_file():
        raise DatasetError(f"Video file {annotation.video} of {video_id} is missing.")
    skus = _store_skus(path, annotation, split, skus, stores)
    for span in annotation.spans:
        _check_labels(path, span.activity, span.sku, activities, skus)
        if not 0 <= span.start < span.end <= annotation.duration + 1e-6:
            raise DatasetError(f"{path}: span {span} is empty or outside the video.")
    return annotation


def _store_skus(
    path: Path, video: VideoAnnotation, split: str, skus: set[str], stores: dict[str, StoreRecord]
) -> set[str]:
    """What the video may show and be asked about: its store's SKUs, or the whole catalog."""
    if video.store is None:
        if stores:
            raise DatasetError(f"{path} names no store; the dataset has several.")
        return skus
    store = stores.get(video.store)
    if store is None:
        raise DatasetError(f"{path}: store {video.store!r} is not in dataset.json.")
    if store.split is not None and store.split != split:
        raise DatasetError(f"{path} is in {split}; all of store {store.store} is in {store.split}.")
    return set(store.skus)


def _read_queries(
    root: Path,
    split: str,
    videos: dict[str, VideoAnnotation],
    activities: tuple[str, ...],
    skus: set[str],
    stores: dict[str, StoreRecord],
) -> tuple[QueryRecord, ...]:
    path = root / "queries" / f"{split}.jsonl"
    if not path.is_file():
        return ()
    sold_in = {store: set(record.skus) for store, record in stores.items()}
    out = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            query = query_from_json(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number} is not JSON: {exc.msg}.") from None
        video = videos.get(query.video_id)
        if video is None or video.split != split:
            raise DatasetError(f"{path}:{number} refers to video {query.video_id} not in {split}.")
        activity = (
            query.activity if isinstance(query, ObjectQueryRecord | TimeQueryRecord) else None
        )
        sold = skus if video.store is None else sold_in[video.store]
        _check_labels(path, activity, query.sku, activities, sold)
        out.append(query)
    return tuple(out)


def _check_labels(
    path: Path, activity: str | None, sku: str, activities: tuple[str, ...], skus: set[str]
) -> None:
    if activity is not None and activity not in activities:
        raise DatasetError(f"{path}: unknown activity {activity!r}.")
    if sku not in skus:
        raise DatasetError(f"{path}: SKU {sku!r} is not in the catalog.")


def _load(path: Path, missing: str) -> dict[str, Any]:
    if not path.is_file():
        raise DatasetError(f"{path.parent} {missing}.")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}.") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} must hold a JSON object.")
    return data
