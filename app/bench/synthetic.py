"""Synthetic sessions for the benchmarks: one long video with many questions, made once.

Drawing a video costs about a second per video-minute on a CPU, so a dataset is kept in a
cache directory under a name that says how it was made, and later runs read it back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from model import ActivityQuery, ObjectQuery, Query, TimeQuery
from model.synth import (
    ActivityQueryRecord,
    Dataset,
    ObjectQueryRecord,
    QueryConfig,
    QueryRecord,
    SynthConfig,
    generate_dataset,
    read_dataset,
)


@dataclass(frozen=True)
class SessionSpec:
    """Which session to draw: its length, how many distinct questions, the seed."""

    minutes: float
    questions: int
    seed: int = 3


#: The session of the full benchmarks (the paper's long videos average 27 minutes), and
#: a short one for ``--quick``.
FULL_SESSION = SessionSpec(minutes=30.0, questions=1000)
QUICK_SESSION = SessionSpec(minutes=3.0, questions=100)


@dataclass(frozen=True)
class Session:
    """One synthetic session: its video, its questions and the catalog images they name."""

    video: Path
    duration_s: float
    questions: tuple[QueryRecord, ...]
    images: dict[str, np.ndarray]  # SKU -> RGB reference image (H, W, 3) uint8
    dataset: Dataset


def cached_session(
    cache: Path, spec: SessionSpec, log: Callable[[str], None] = lambda _line: None
) -> Session:
    """The session ``spec`` describes, drawn into ``cache`` the first time, then reused.

    It holds up to ``spec.questions`` distinct questions (fewer when the video has too few
    places for them) in the dataset's mix of kinds and window buckets, in random order.
    """
    # the generator draws up to per_bucket questions per kind and window bucket (3 x 3)
    per_bucket = max(1, math.ceil(spec.questions / 9))
    root = cache / f"synth-{spec.minutes:g}min-seed{spec.seed}-q{per_bucket}"
    if not (root / "dataset.json").is_file():  # dataset.json is written last: a whole dataset
        log(f"drawing a {spec.minutes:g}-minute synthetic session into {root} (once)")
        config = SynthConfig(queries=QueryConfig(per_bucket=per_bucket))
        generate_dataset(
            root, videos=1, minutes=spec.minutes, seed=spec.seed, config=config, overwrite=True
        )
    dataset = read_dataset(root)
    (annotation,) = dataset.videos.values()
    records = [q for split in dataset.queries.values() for q in split]
    # the dataset lists questions by kind and bucket; any prefix should hold the whole mix
    order = np.random.default_rng(spec.seed).permutation(len(records))
    return Session(
        video=dataset.video_path(annotation.video_id),
        duration_s=annotation.duration,
        questions=tuple(records[i] for i in order),
        images={e.sku: _rgb(dataset.image_path(e.sku)) for e in dataset.catalog},
        dataset=dataset,
    )


def session_frames(session: Session, fps: float) -> int:
    """Samples the whole session gives at ``fps`` (as ``model.synth.decode_video``)."""
    return math.ceil(session.duration_s * fps - 1e-6)


def model_query(
    record: QueryRecord, session: Session, *, labels: tuple[str, ...], fps: float
) -> Query:
    """The record as the model's query on memory 0, its window in steps at ``fps``.

    Steps as the query worker computes them: the first step at or before the window's start,
    the end rounded up and kept inside the session.
    """
    frames = session_frames(session, fps)
    start = min(math.floor(record.start * fps), frames - 1)
    end = max(start + 1, min(math.ceil(record.end * fps), frames))
    if isinstance(record, ActivityQueryRecord):
        return ActivityQuery(0, session.images[record.sku], start, end)
    if isinstance(record, ObjectQueryRecord):
        return ObjectQuery(0, labels.index(record.activity), start, end)
    return TimeQuery(0, labels.index(record.activity), session.images[record.sku], start, end)


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))
