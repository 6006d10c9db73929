"""Query records of the dataset (seconds) → model queries and targets (memory steps).

Conversions (``model.data.timeline``): windows, spans and answers go to the steps whose
instant ``k / fps`` lies inside them. Object boxes are annotated at ``box_fps`` (5) but
the model answers one box per memory step (1 FPS): a step's target is the annotated box
nearest to its instant, when the step's instant lies in the instance and a box is within
half a step of it; other steps of the window have no target (``present`` False).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from model.config import ModelConfig
from model.data.timeline import seconds_to_steps
from model.queries import (
    ActivityQuery,
    ActivityTarget,
    ObjectQuery,
    ObjectTarget,
    Query,
    Target,
    TimeQuery,
    TimeTarget,
)
from model.synth.errors import DatasetError
from model.synth.records import (
    ActivityQueryRecord,
    ObjectQueryRecord,
    QueryRecord,
    Span,
    TimeQueryRecord,
)


@dataclass(frozen=True, eq=False)
class Example:
    """One dataset query as the model sees it.

    ``query.memory_index`` is 0; ``query_at(i)`` gives the query for row ``i`` of a memory
    batch.
    """

    record: QueryRecord
    query: Query
    target: Target

    @property
    def video_id(self) -> str:
        return self.record.video_id

    @property
    def last_step(self) -> int:
        """The window's last step: the query can be asked once this frame is in memory."""
        return self.query.end - 1

    def query_at(self, memory_index: int) -> Query:
        return dataclasses.replace(self.query, memory_index=memory_index)


def make_example(
    record: QueryRecord,
    cfg: ModelConfig,
    num_steps: int,
    images: Mapping[str, np.ndarray],
    spans: Sequence[Span] | None = None,
) -> Example:
    """The query and target of ``record`` for a video of ``num_steps`` memory steps.

    ``images``: SKU → RGB uint8 reference image (the object image of activity and time
    queries) of the products the video's store sells; a query about another is refused.
    ``spans``: the video's annotated activities; with them an activity target also says
    what happened at each step (``ActivityTarget.steps``).
    """
    fps = cfg.fps
    start, end = seconds_to_steps(record.start, record.end, fps, num_steps)
    if isinstance(record, ActivityQueryRecord):
        labels = [activity_index(cfg, a) for a in record.activities]
        query: Query = ActivityQuery(0, _object_image(record, images), start, end)
        per_step = None if spans is None else step_labels(cfg, record.sku, spans, start, end)
        return Example(record, query, ActivityTarget(labels, per_step))
    if isinstance(record, ObjectQueryRecord):
        query = ObjectQuery(0, activity_index(cfg, record.activity), start, end)
        boxes, present = step_boxes(record, fps, start, end)
        return Example(record, query, ObjectTarget(boxes, present))
    if isinstance(record, TimeQueryRecord):
        a = activity_index(cfg, record.activity)
        query = TimeQuery(0, a, _object_image(record, images), start, end)
        s, e = seconds_to_steps(record.answer_start, record.answer_end, fps, num_steps)
        s, e = min(max(s, start), end - 1), min(max(e, start + 1), end)  # inside the window
        return Example(record, query, TimeTarget(s, max(e, s + 1)))
    raise TypeError(f"Unknown query record {type(record).__name__}.")


def step_labels(
    cfg: ModelConfig, sku: str, spans: Sequence[Span], start: int, end: int
) -> np.ndarray:
    """``(end - start, A)``: 1 where an activity with ``sku`` covers the step's instant
    ``k / fps``, -1 (not judged) on the step just before and just after each such
    activity, 0 elsewhere."""
    labels = np.zeros((end - start, cfg.num_activities), dtype=np.float32)
    fps = cfg.fps
    covered = np.zeros_like(labels, dtype=bool)
    for span in spans:
        if span.sku != sku or span.activity not in cfg.activity_labels:
            continue
        a = cfg.activity_labels.index(span.activity)
        first = math.ceil(span.start * fps - 1e-6)  # steps whose instant lies in the span
        last = math.ceil(span.end * fps - 1e-6) - 1
        for k in (first - 1, last + 1):  # the boundary steps: not judged
            if start <= k < end and not covered[k - start, a]:
                labels[k - start, a] = -1.0
        for k in range(max(first, start), min(last, end - 1) + 1):
            labels[k - start, a] = 1.0
            covered[k - start, a] = True
    return labels


def _object_image(
    record: ActivityQueryRecord | TimeQueryRecord, images: Mapping[str, np.ndarray]
) -> np.ndarray:
    try:
        return images[record.sku]
    except KeyError:
        raise DatasetError(
            f"Query {record.query_id} asks about {record.sku}, which is not one of the "
            f"products of video {record.video_id}'s store."
        ) from None


def step_boxes(
    record: ObjectQueryRecord, fps: float, start: int, end: int
) -> tuple[np.ndarray, np.ndarray]:
    """Target box ``(L, 4)`` and ``present`` ``(L,)`` for each step of ``[start, end)``."""
    length = end - start
    boxes = np.zeros((length, 4), dtype=np.float32)
    present = np.zeros(length, dtype=bool)
    if not record.boxes:
        return boxes, present
    times = np.array([t for t, _ in record.boxes])
    values = np.array([b for _, b in record.boxes], dtype=np.float32)
    for i in range(length):
        instant = (start + i) / fps
        if not record.answer_start - 1e-6 <= instant < record.answer_end - 1e-6:
            continue
        j = int(np.argmin(np.abs(times - instant)))
        if abs(times[j] - instant) <= 0.5 / fps and values[j, 2] > 0 and values[j, 3] > 0:
            boxes[i], present[i] = values[j], True
    return boxes, present


def activity_index(cfg: ModelConfig, activity: str) -> int:
    try:
        return cfg.activity_labels.index(activity)
    except ValueError:
        raise DatasetError(
            f"Activity {activity!r} is not one of the model's {list(cfg.activity_labels)}."
        ) from None


def check_activities(cfg: ModelConfig, activities: Sequence[str]) -> None:
    """The dataset's activity labels must be the model's, in the same (head) order."""
    if tuple(activities) != tuple(cfg.activity_labels):
        raise DatasetError(
            f"The dataset's activities {list(activities)} differ from the model's "
            f"{list(cfg.activity_labels)}."
        )
