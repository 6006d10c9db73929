"""Trivial baselines: what a model that never looks at the video scores.

- activity: the same ranking for every query, most frequent activity first (frequencies of
  the ground-truth labels of the training queries);
- object: a box covering the whole frame at every annotated frame;
- time: the whole query window as the answer.

They read only query records (seconds, 5 FPS boxes), so they need neither tokens nor a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from model.evaluate.metrics import (
    QueryScore,
    Summary,
    score_activity,
    score_object,
    score_time,
    summarize,
)
from model.synth.records import (
    ActivityQueryRecord,
    ObjectQueryRecord,
    QueryRecord,
    TimeQueryRecord,
)

WHOLE_FRAME = (0.5, 0.5, 1.0, 1.0)


def activity_frequencies(records: Iterable[QueryRecord], activities: Sequence[str]) -> np.ndarray:
    """How often each activity is a ground-truth label among the activity queries ``(A,)``."""
    counts = np.zeros(len(activities), dtype=np.float64)
    for record in records:
        if isinstance(record, ActivityQueryRecord):
            for activity in record.activities:
                counts[activities.index(activity)] += 1
    return counts


def baseline_scores(
    records: Iterable[QueryRecord], activities: Sequence[str], frequencies: np.ndarray
) -> list[QueryScore]:
    """Per-query metrics of the three trivial answers."""
    scores = []
    for r in records:
        if isinstance(r, ActivityQueryRecord):
            labels = [activities.index(a) for a in r.activities]
            scores.append(score_activity(r.query_id, r.bucket, frequencies, labels))
        elif isinstance(r, ObjectQueryRecord):
            if r.boxes:
                truth = np.array([box for _, box in r.boxes], dtype=np.float64)
                predicted = np.tile(np.array(WHOLE_FRAME), (len(truth), 1))
                scores.append(score_object(r.query_id, r.bucket, predicted, truth))
        elif isinstance(r, TimeQueryRecord):
            scores.append(
                score_time(r.query_id, r.bucket, (r.start, r.end), (r.answer_start, r.answer_end))
            )
    return scores


def evaluate_baselines(
    test: Iterable[QueryRecord], train: Iterable[QueryRecord], activities: Sequence[str]
) -> Summary:
    """The baselines' metrics on ``test``, with activity frequencies counted on ``train``."""
    frequencies = activity_frequencies(train, list(activities))
    return summarize(baseline_scores(test, list(activities), frequencies))
