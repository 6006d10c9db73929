"""Evaluation: two-stage inference (populate each memory once, then answer from it) and
the paper's metrics per window bucket, plus the trivial baselines and the per-query
re-reading baseline."""

from model.evaluate.baselines import activity_frequencies, baseline_scores, evaluate_baselines
from model.evaluate.metrics import (
    IOU_THRESHOLD,
    METRICS,
    QueryScore,
    Summary,
    box_iou,
    gt_viou,
    recall_at_kx,
    summarize,
    tiou,
)
from model.evaluate.report import EvalReport, evaluate_checkpoint
from model.evaluate.rereading import REREADING, evaluate_rereading
from model.evaluate.two_stage import EvalResult, answer_all, evaluate, populate, score

__all__ = [
    "IOU_THRESHOLD",
    "METRICS",
    "REREADING",
    "EvalReport",
    "EvalResult",
    "QueryScore",
    "Summary",
    "activity_frequencies",
    "answer_all",
    "baseline_scores",
    "box_iou",
    "evaluate",
    "evaluate_baselines",
    "evaluate_checkpoint",
    "evaluate_rereading",
    "gt_viou",
    "populate",
    "recall_at_kx",
    "score",
    "summarize",
    "tiou",
]
