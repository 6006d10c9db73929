"""``generate_dataset``: the one entry point that writes a whole synthetic dataset.

Videos are split into train/val/test before anything is drawn and each video's seed is
derived from (dataset seed, split, index), so held-out videos come from seeds no
training video used, and adding videos to one split never changes another split.

With several stores the split is by store: each store has its own catalog, all of its
videos are in its split, and the test stores' products appear in no train or validation
video. A video's seed then follows from (dataset seed, store, split, index in store).
``dataset.json`` is written last: a directory without it is an interrupted run.

Each video is independent of the others (its own seed, its own file), so ``workers``
processes can draw them at once; the dataset is the same byte for byte whatever their
number (x264 runs single-threaded, and every record is collected in plan order).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.synth.catalog import CatalogItem, make_catalog, make_store_catalog, store_id
from model.synth.config import (
    ACTIVITIES,
    BUCKETS,
    FORMAT_VERSION,
    GENERATOR_VERSION,
    QUERY_KINDS,
    SynthConfig,
)
from model.synth.errors import OutputExistsError, SynthConfigError
from model.synth.products import reference_image
from model.synth.queries import make_queries
from model.synth.records import (
    CatalogEntry,
    QueryRecord,
    StoreRecord,
    VideoAnnotation,
    query_to_json,
)
from model.synth.seeding import derive_seed, rng_for
from model.synth.video import VideoPlan, build_world, write_video

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: What the generator writes under the output directory (and removes on overwrite).
_OUTPUTS = ("dataset.json", "catalog.json", "catalog", "videos", "annotations", "queries")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DatasetSummary:
    """What ``generate_dataset`` wrote, for the CLI's report."""

    root: Path
    videos: dict[str, int]  # per split
    queries: dict[str, int]  # per split
    skus: int
    stores: dict[str, int]  # per split; a single-store dataset counts its store in each split
    seconds_of_video: float
    elapsed_seconds: float


def generate_dataset(
    out: Path,
    *,
    videos: int,
    minutes: float,
    seed: int,
    config: SynthConfig | None = None,
    stores: int = 1,
    progress: Progress | None = None,
    overwrite: bool = False,
    workers: int = 1,
) -> DatasetSummary:
    """Write ``videos`` synthetic videos of ``minutes`` each, with catalog and queries, to ``out``.

    ``stores`` > 1 spreads the videos evenly over that many stores, each with its own
    catalog of ``config.num_skus`` products, and splits by store (``config.split`` are
    then fractions of the stores). Same arguments, same dataset: annotations and queries
    byte for byte, videos frame for frame (and byte for byte with the same PyAV/x264
    build). ``progress(done, total)`` counts rendered frames over all videos (with
    ``workers`` > 1, as each video finishes). ``workers`` processes draw videos at once;
    the dataset does not depend on their number. Raises ``OutputExistsError`` when ``out``
    already holds a dataset and ``overwrite`` is false.
    """
    if workers < 1:
        raise SynthConfigError(f"workers must be at least 1, not {workers}.")
    config = config or SynthConfig()
    began = time.monotonic()
    catalogs: dict[str | None, tuple[CatalogItem, ...]]  # by store; None: the one store
    if stores > 1:
        plans = plan_store_videos(
            videos=videos, minutes=minutes, seed=seed, stores=stores, config=config
        )
        catalogs = {
            store_id(i): make_store_catalog(seed, i, config.num_skus) for i in range(stores)
        }
    else:
        plans = plan_videos(videos=videos, minutes=minutes, seed=seed, config=config)
        catalogs = {None: make_catalog(seed, config.num_skus)}
    _prepare(out, overwrite)
    _write_catalog(out, [item for catalog in catalogs.values() for item in catalog])

    total = sum(p.num_frames for p in plans)
    done = 0
    queries: dict[str, list[QueryRecord]] = {split: [] for split in SPLITS}
    annotations: list[VideoAnnotation] = []
    drawn = _drawn_in_order(plans, catalogs, config, out, workers, progress, total)
    for plan, (annotation, video_queries) in zip(plans, drawn, strict=True):
        annotations.append(annotation)
        queries[plan.split] += video_queries
        done += plan.num_frames
        if progress is not None:
            progress(done, total)

    (out / "queries").mkdir(exist_ok=True)
    for split, split_queries in queries.items():
        lines = [json.dumps(query_to_json(q), separators=(",", ":")) for q in split_queries]
        (out / "queries" / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    records = [
        StoreRecord(store, _store_split(store, plans), tuple(c.sku for c in catalog))
        for store, catalog in catalogs.items()
        if store is not None
    ]
    write_json(out / "dataset.json", _dataset_json(seed, minutes, config, plans, queries, records))
    return DatasetSummary(
        root=out,
        videos={s: sum(p.split == s for p in plans) for s in SPLITS},
        queries={s: len(q) for s, q in queries.items()},
        skus=sum(len(catalog) for catalog in catalogs.values()),
        stores={s: len({p.store for p in plans if p.split == s}) for s in SPLITS},
        seconds_of_video=sum(a.duration for a in annotations),
        elapsed_seconds=time.monotonic() - began,
    )


def _drawn_in_order(
    plans: list[VideoPlan],
    catalogs: dict[str | None, tuple[CatalogItem, ...]],
    config: SynthConfig,
    out: Path,
    workers: int,
    progress: Progress | None,
    total: int,
) -> Iterator[tuple[VideoAnnotation, list[QueryRecord]]]:
    """Each plan's annotation and queries, in plan order, drawn here or by ``workers``
    processes."""
    if workers == 1 or len(plans) < 2:
        done = 0
        for plan in plans:

            def on_frame(frame: int, base: int = done) -> None:
                if progress is not None and (frame + 1) % config.video.fps == 0:
                    progress(base + frame + 1, total)

            yield _draw_video(plan, catalogs[plan.store], config, out, on_frame)
            done += plan.num_frames
        return
    # spawn, not fork: a forked child of a process whose torch or x264 threads are running
    # can inherit a held lock; spawned children import the package afresh (~2 s each)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(plans)), mp_context=context) as pool:
        jobs = [pool.submit(_draw_video, p, catalogs[p.store], config, out) for p in plans]
        try:
            for job in jobs:
                yield job.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)  # one video failed: draw no more of them
            raise


def _draw_video(
    plan: VideoPlan,
    catalog: tuple[CatalogItem, ...],
    config: SynthConfig,
    out: Path,
    on_frame: Callable[[int], None] | None = None,
) -> tuple[VideoAnnotation, list[QueryRecord]]:
    """One video, start to end: rendered and encoded, its annotation written, its queries
    drawn from its own seed (a worker process's whole task)."""
    annotation = write_video(build_world(plan, catalog, config), out, config, on_frame)
    write_json(out / "annotations" / f"{plan.video_id}.json", annotation.to_json())
    rng = rng_for(plan.seed, "queries")
    return annotation, make_queries(annotation, [c.sku for c in catalog], rng, config.queries)


def plan_videos(*, videos: int, minutes: float, seed: int, config: SynthConfig) -> list[VideoPlan]:
    """The videos of a dataset: ids ``<split>-<index>``, per-video seeds, frame counts."""
    if videos < 1:
        raise SynthConfigError("Generate at least one video.")
    if not math.isfinite(minutes) or minutes * 60 < 5:
        raise SynthConfigError("Videos must be at least 5 seconds (0.0834 minutes) long.")
    num_frames = round(minutes * 60 * config.video.fps)
    plans = []
    for split, count in zip(SPLITS, split_counts(videos, config.split), strict=True):
        for index in range(count):
            video_seed = derive_seed(seed, "video", split, index)
            plans.append(VideoPlan(f"{split}-{index:04d}", split, video_seed, num_frames))
    return plans


def plan_store_videos(
    *, videos: int, minutes: float, seed: int, stores: int, config: SynthConfig
) -> list[VideoPlan]:
    """The videos of a multi-store dataset: ids ``<split>-<store>-<index>``, spread evenly
    over the stores; stores ``S001``... are train, then val, then test (``config.split``
    as fractions of the stores, counted like videos are by ``split_counts``)."""
    if stores > 999:
        raise SynthConfigError("A dataset has at most 999 stores.")
    if videos < stores:
        raise SynthConfigError(f"Generate at least one video per store ({stores} stores).")
    one = plan_videos(videos=1, minutes=minutes, seed=seed, config=config)[0]  # checks minutes
    splits = [
        s for s, n in zip(SPLITS, split_counts(stores, config.split), strict=True) for _ in range(n)
    ]
    plans = []
    for index, split in enumerate(splits):
        store = store_id(index)
        for k in range(videos // stores + (index < videos % stores)):
            video_seed = derive_seed(seed, "store", store, split, "video", k)
            plans.append(
                VideoPlan(f"{split}-{store}-{k:04d}", split, video_seed, one.num_frames, store)
            )
    return sorted(plans, key=lambda p: SPLITS.index(p.split))


def split_counts(videos: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Videos per split: largest remainders, and at least one val and test video from 3 on."""
    total = sum(fractions)
    raw = [videos * f / total for f in fractions]
    counts = [math.floor(r) for r in raw]
    by_remainder = sorted(range(3), key=lambda i: (counts[i] - raw[i], i))
    for i in by_remainder[: videos - sum(counts)]:
        counts[i] += 1
    if videos >= 3:
        for i in (2, 1):  # test first: held-out evaluation matters more than validation
            if counts[i] == 0 and fractions[i] > 0:
                counts[counts.index(max(counts))] -= 1
                counts[i] += 1
    return (counts[0], counts[1], counts[2])


# ---------------------------------------------------------------------- files
def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} is a file; give a directory for the dataset.")
    existing = [name for name in _OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{out} already holds a dataset ({', '.join(existing)}); choose another directory "
            "or allow overwriting."
        )
    for name in existing:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _store_split(store: str, plans: list[VideoPlan]) -> str:
    return next(p.split for p in plans if p.store == store)


def _write_catalog(out: Path, catalog: list[CatalogItem]) -> None:
    (out / "catalog").mkdir()
    entries = []
    for item in catalog:
        image = f"catalog/{item.sku}.png"
        reference_image(item.style).save(out / image, format="PNG", optimize=False)
        entries.append(CatalogEntry(item.sku, item.name, item.price, image).to_json())
    write_json(out / "catalog.json", {"skus": entries})


def _dataset_json(
    seed: int,
    minutes: float,
    config: SynthConfig,
    plans: list[VideoPlan],
    queries: dict[str, list[QueryRecord]],
    stores: list[StoreRecord],
) -> dict[str, Any]:
    counts = {
        split: {
            kind: {b: sum(q.kind == kind and q.bucket == b for q in split_queries) for b in BUCKETS}
            for kind in QUERY_KINDS
        }
        for split, split_queries in queries.items()
    }
    q = config.queries
    # Only a multi-store dataset says which stores it has: a single-store one is version 1's.
    where = {"stores": [store.to_json() for store in stores]} if stores else {}
    return {
        "format_version": FORMAT_VERSION,
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "minutes": minutes,
        "activities": list(ACTIVITIES),
        "buckets": {b: [q.bucket_range(b)[0], _finite(q.bucket_range(b)[1])] for b in BUCKETS},
        "splits": {s: [p.video_id for p in plans if p.split == s] for s in SPLITS},
        "query_counts": counts,
        "config": config.to_dict(),
        **where,
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Indented JSON with one record per line for lists of records (readable, diffable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["{"]
    items = list(data.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, list) and value and isinstance(value[0], dict):
            inner = ",\n".join("    " + json.dumps(v, separators=(", ", ": ")) for v in value)
            lines.append(f"  {json.dumps(key)}: [\n{inner}\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")
