"""Training losses (paper, Sec. "Training loss"), returned as a dict with separate weights.

- activity: sigmoid focal loss (multi-label; alpha 0.25, gamma 2);
- object: L1 on ``cx, cy, w, h`` (lambda 5) + generalized IoU (lambda 2) on annotated steps;
- time: KL from a Gaussian-smoothed target (sigma = 1 step, as TubeDETR) to the predicted
  start and end distributions. The paper writes cross-entropy; the smoothed target is
  TubeDETR's, whose model the paper starts from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_convert, generalized_box_iou_loss, sigmoid_focal_loss

from model.config import ModelConfig
from model.heads import masked_log_softmax
from model.outputs import QueryOutputs
from model.queries import ActivityTarget, ObjectTarget, Query, Target, TimeTarget

_T = TypeVar("_T", ActivityTarget, ObjectTarget, TimeTarget)


def activity_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Focal loss of logits ``(N, A)`` against multi-hot ``labels`` ``(N, A)``.

    Summed over classes, averaged over queries.
    """
    focal = sigmoid_focal_loss(logits, labels.to(logits.dtype), alpha=0.25, gamma=2.0)
    return focal.sum(dim=-1).mean()


def step_labels(
    step_logits: Tensor, step_mask: Tensor, rows: Sequence[int], targets: Sequence[Target]
) -> Tensor | None:
    """Per-step labels ``(N, L, A)`` (1, 0, or -1 where not judged, padded steps included)
    of the activity targets that carry them; None when none does."""
    labels = torch.full_like(step_logits, -1.0)
    given = False
    for row, r in enumerate(rows):
        steps = _target(targets, r, ActivityTarget).steps
        if steps is None:
            continue
        n = int(step_mask[row].sum())
        if steps.shape != (n, step_logits.shape[-1]):
            raise ValueError(
                f"Activity target {r} must give one row of labels per window step ({n})."
            )
        labels[row, :n] = torch.as_tensor(steps, dtype=labels.dtype, device=labels.device)
        given = True
    return labels if given else None


def activity_step_loss(step_logits: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy of every judged (step, activity) cell, summed over activities
    and averaged over judged steps: the same scale as ``activity_loss`` per query.

    Plain cross-entropy, not focal: these probabilities are what events are counted from,
    and the focal loss's down-weighting of confident cells would skew them.
    """
    judged = labels >= 0  # (N, L, A)
    if not judged.any():
        return step_logits.sum() * 0.0
    bce = F.binary_cross_entropy_with_logits(step_logits[judged], labels[judged], reduction="sum")
    steps = judged.any(dim=-1).sum()
    return bce / steps


def box_losses(boxes: Tensor, target: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
    """L1 and GIoU losses of boxes ``(N, L, 4)`` vs ``target`` on ``present`` steps ``(N, L)``.

    Both are averaged over annotated boxes (L1 summed over the 4 coordinates, as DETR).
    """
    pred, gt = boxes[present], target[present].to(boxes.dtype)  # (K, 4) each
    if pred.shape[0] == 0:
        zero = boxes.sum() * 0.0  # keeps the graph (and the device) without a signal
        return zero, zero
    l1 = (pred - gt).abs().sum(dim=-1).mean()
    giou = generalized_box_iou_loss(
        box_convert(pred, "cxcywh", "xyxy"), box_convert(gt, "cxcywh", "xyxy"), reduction="mean"
    )
    return l1, giou


def gaussian_target(center: Tensor, step_mask: Tensor, sigma: float = 1.0) -> Tensor:
    """Distribution ``(N, L)`` over real steps, Gaussian around ``center`` ``(N,)``."""
    steps = torch.arange(step_mask.shape[1], device=step_mask.device, dtype=torch.float32)
    logits = -((steps[None, :] - center[:, None].float()) ** 2) / (2.0 * sigma**2)  # (N, L)
    return masked_log_softmax(logits, step_mask).exp()


def time_loss(
    start_logits: Tensor,
    end_logits: Tensor,
    step_mask: Tensor,
    start: Tensor,
    last: Tensor,
    sigma: float = 1.0,
) -> Tensor:
    """KL(target || prediction) for start and end, summed over steps, mean over queries.

    ``start`` and ``last`` ``(N,)`` are window-relative indices of the first and last
    step of the activity (its end-exclusive end minus one).
    """
    total = start_logits.new_zeros(())
    for logits, index in ((start_logits, start), (end_logits, last)):
        target = gaussian_target(index, step_mask, sigma)  # (N, L)
        # Padded steps: target 0 and log-prediction -inf; zero them before 0 * inf appears.
        log_pred = masked_log_softmax(logits, step_mask).masked_fill(~step_mask, 0.0)  # (N, L)
        kl = target * (target.clamp_min(1e-12).log() - log_pred)
        total = total + kl.sum(dim=-1).mean()
    return total


def query_losses(
    outputs: QueryOutputs, queries: Sequence[Query], targets: Sequence[Target]
) -> dict[str, Tensor]:
    """Per-term losses for the kinds present: ``activity``, ``box_l1``, ``box_giou``, ``time``.

    ``targets[i]`` belongs to ``queries[i]`` and must be of the matching kind.
    """
    losses: dict[str, Tensor] = {}
    if outputs.activity is not None:
        act = outputs.activity
        labels = torch.zeros_like(act.logits)
        for row, r in enumerate(act.rows):
            labels[row, list(_target(targets, r, ActivityTarget).labels)] = 1.0
        losses["activity"] = activity_loss(act.logits, labels)
        if act.step_logits is not None and act.step_mask is not None:
            judged = step_labels(act.step_logits, act.step_mask, act.rows, targets)
            if judged is not None:
                losses["activity_steps"] = activity_step_loss(act.step_logits, judged)
    if outputs.object is not None:
        obj = outputs.object
        target = torch.zeros_like(obj.boxes)
        present = torch.zeros_like(obj.step_mask)
        for row, r in enumerate(obj.rows):
            t = _target(targets, r, ObjectTarget)
            n = int(obj.step_mask[row].sum())
            boxes = torch.as_tensor(t.boxes, dtype=target.dtype)
            flags = torch.as_tensor(t.present, dtype=torch.bool)
            if boxes.shape != (n, 4) or flags.shape != (n,):
                raise ValueError(f"Object target {r} must give one box per window step ({n}).")
            target[row, :n] = boxes.to(target.device)
            present[row, :n] = flags.to(present.device)
        losses["box_l1"], losses["box_giou"] = box_losses(obj.boxes, target, present)
    if outputs.time is not None:
        tim = outputs.time
        first: list[int] = []
        last: list[int] = []
        for r in tim.rows:
            span, q = _target(targets, r, TimeTarget), queries[r]
            if not q.start <= span.start < span.end <= q.end:
                raise ValueError(f"Time target {r} must lie inside its query window.")
            first.append(span.start - q.start)
            last.append(span.end - 1 - q.start)
        device = tim.start_logits.device
        losses["time"] = time_loss(
            tim.start_logits,
            tim.end_logits,
            tim.step_mask,
            torch.tensor(first, device=device),
            torch.tensor(last, device=device),
        )
    return losses


def loss_weights(cfg: ModelConfig) -> dict[str, float]:
    """Weight of each term of ``query_losses`` (paper: L1 5, GIoU 2)."""
    return {
        "activity": cfg.loss_activity,
        "box_l1": cfg.loss_box_l1,
        "box_giou": cfg.loss_box_giou,
        "time": cfg.loss_time,
        "sampler_evidence": cfg.loss_sampler_evidence,
        "activity_steps": cfg.loss_activity_steps,
    }


def sampler_evidence_loss(scores: Tensor, evidence: Tensor, known: Tensor) -> Tensor:
    """Binary cross-entropy of the sampler's candidate scores ``(B, n)`` (as logits) against
    ``evidence`` ``(B, n)`` (1: the token shows the handled product), over ``known`` ones.

    Not in the paper, whose sampler learns only through the answers' losses. A score is a
    logit of "worth keeping"; the top-m selection only uses their order, so this teaches the
    order that puts the handled product first and leaves the rest to the answer losses.
    """
    if not bool(known.any()):
        return scores.sum() * 0.0  # keeps the graph; nothing known in this batch
    return F.binary_cross_entropy_with_logits(scores[known].float(), evidence[known].float())


def weighted_sum(losses: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """The scalar to back-propagate: ``sum(weights[k] * losses[k])``."""
    if not losses:
        raise ValueError("weighted_sum needs at least one loss term.")
    total = sum(weights[k] * v for k, v in losses.items())
    assert isinstance(total, Tensor)  # at least one term: 0 + a tensor is a tensor
    return total


def _target(targets: Sequence[Target], row: int, kind: type[_T]) -> _T:
    t = targets[row]
    if not isinstance(t, kind):
        raise TypeError(f"Target {row} must be a {kind.__name__}, got {type(t).__name__}.")
    return t
