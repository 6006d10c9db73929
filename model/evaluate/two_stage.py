"""Two-stage evaluation (paper Fig. 3): read each video once, then answer from memory only.

Stage 1 writes every test video into its memory clip by clip (``net.write_tokens`` on
cached tokens: the same path for the ``neural``, ``random`` and ``merge`` writers, chosen
with ``net.use_writer``). Stage 2 asks every query of the split against those memories
with ``net.answer``; the video is not read again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.data.examples import Example
from model.data.split import SplitData
from model.data.swapped import is_twin
from model.data.timeline import nearest_step, steps_to_seconds
from model.evaluate.metrics import (
    AGE_BUCKETS,
    QueryScore,
    Summary,
    age_bucket,
    score_activity,
    score_object,
    score_time,
    summarize,
)
from model.memory import Memory
from model.network import LongVMNet
from model.queries import (
    ActivityPrediction,
    ActivityTarget,
    ObjectPrediction,
    Prediction,
    TimePrediction,
)
from model.synth.records import ObjectQueryRecord, TimeQueryRecord

#: ``progress(done, total)`` over the videos of stage 1.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one writer on one split, and how long each stage took."""

    writer: str
    split: str
    videos: int
    queries: int
    summary: Summary
    populate_seconds: float
    answer_seconds: float
    by_age: Summary | None = None  # the same scores grouped by ``age_bucket``

    def to_dict(self) -> dict[str, object]:
        return {
            "writer": self.writer,
            "split": self.split,
            "videos": self.videos,
            "queries": self.queries,
            **self.summary.to_dict(),
            "by_age": None if self.by_age is None else self.by_age.to_dict(),
            "populate_seconds": round(self.populate_seconds, 3),
            "answer_seconds": round(self.answer_seconds, 3),
        }


def evaluate(
    net: LongVMNet,
    data: SplitData,
    *,
    writer: str | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Both stages on every video and query of ``data``; ``writer`` overrides the net's."""
    previous = net.cfg.writer
    if writer is not None:
        net.use_writer(writer)
    try:
        began = time.perf_counter()
        memories = populate(net, data, progress=progress)
        populated = time.perf_counter()
        scores = answer_all(net, data, memories)
        answered = time.perf_counter()
        used = net.cfg.writer
    finally:
        if net.cfg.writer != previous:
            net.use_writer(previous)
    return EvalResult(
        writer=used,
        split=data.split,
        videos=len(memories),
        queries=data.num_examples(),
        summary=summarize(scores),
        populate_seconds=populated - began,
        answer_seconds=answered - populated,
        by_age=summarize(by_age(scores, data, net.cfg.fps), AGE_BUCKETS),
    )


def by_age(scores: list[QueryScore], data: SplitData, fps: float) -> list[QueryScore]:
    """The scores regrouped by how long before its video's end each query window closed."""
    ages = {
        e.record.query_id: age_bucket(data.tokens[video_id].shape[0] / fps - e.record.end)
        for video_id, examples in data.examples.items()
        for e in examples
    }
    return [dataclasses.replace(s, bucket=ages[s.query_id]) for s in scores]


def populate(
    net: LongVMNet, data: SplitData, *, progress: Progress | None = None
) -> dict[str, Memory]:
    """Stage 1: each video read once, in consecutive clips of ``clip_frames`` frames."""
    t = net.cfg.clip_frames
    memories: dict[str, Memory] = {}
    for done, (video_id, tokens) in enumerate(data.tokens.items(), start=1):
        memory = None
        for first in range(0, tokens.shape[0], t):
            memory = net.write_tokens(memory, tokens[None, first : first + t])  # (1, T, S, C)
        assert memory is not None  # every cached video has at least one frame
        memories[video_id] = memory
        if progress is not None:
            progress(done, len(data.tokens))
    return memories


def answer_all(net: LongVMNet, data: SplitData, memories: dict[str, Memory]) -> list[QueryScore]:
    """Stage 2: every query of every video, answered from the memories alone, scored."""
    order = list(memories)
    row = {video_id: i for i, video_id in enumerate(order)}
    examples = [e for video_id in order for e in data.examples[video_id]]
    if not examples:
        return []
    memory = Memory.cat([memories[v] for v in order])
    predictions = net.answer(memory, [e.query_at(row[e.video_id]) for e in examples])
    fps = net.cfg.fps
    return [score(e, p, fps) for e, p in zip(examples, predictions, strict=True)]


def score(example: Example, prediction: Prediction, fps: float) -> QueryScore:
    """One query's metrics, judged against the dataset's own answer (seconds, 5 FPS boxes)."""
    record, query = example.record, example.query
    if isinstance(prediction, ActivityPrediction):
        assert isinstance(example.target, ActivityTarget)
        return score_activity(
            record.query_id,
            record.bucket,
            prediction.probabilities,
            example.target.labels,
            twin=is_twin(record.query_id),
        )
    if isinstance(prediction, ObjectPrediction):
        assert isinstance(record, ObjectQueryRecord)
        if not record.boxes:  # converted data may leave boxes out: nothing to judge
            return QueryScore(record.query_id, "object", record.bucket)
        # Every annotated frame (5 FPS) is judged by the box of the memory step nearest to it.
        truth = np.array([box for _, box in record.boxes], dtype=np.float64)
        rows = [
            min(max(nearest_step(t, fps), query.start), query.end - 1) - query.start
            for t, _ in record.boxes
        ]
        return score_object(record.query_id, record.bucket, prediction.boxes[rows], truth)
    if isinstance(prediction, TimePrediction):
        assert isinstance(record, TimeQueryRecord)
        start, end = steps_to_seconds(prediction.start, prediction.end, fps)
        predicted = (max(start, record.start), min(end, record.end))
        true_span = (record.answer_start, record.answer_end)
        return score_time(record.query_id, record.bucket, predicted, true_span)
    raise TypeError(f"Unknown prediction {type(prediction).__name__}.")
