"""Raw (differentiable) outputs of ``LongVMNet.forward_queries``, grouped by query kind."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class ActivityOutputs:
    """``logits``: ``(N, num_activities)``; ``rows``: each row's position in the query list;
    ``step_logits``: ``(N, L, num_activities)`` per window step (``logits`` is their max);
    ``step_mask``: ``(N, L)`` real steps."""

    rows: list[int]
    logits: Tensor
    step_logits: Tensor | None = None
    step_mask: Tensor | None = None


@dataclass
class ObjectOutputs:
    """``boxes``: ``(N, L, 4)`` cxcywh in [0, 1]; ``step_mask``: ``(N, L)`` real steps."""

    rows: list[int]
    boxes: Tensor
    step_mask: Tensor


@dataclass
class TimeOutputs:
    """Start/end logits ``(N, L)`` per window step; ``step_mask``: ``(N, L)`` real steps."""

    rows: list[int]
    start_logits: Tensor
    end_logits: Tensor
    step_mask: Tensor


@dataclass
class QueryOutputs:
    """One entry per kind present in the batch (None where the batch had none)."""

    activity: ActivityOutputs | None = None
    object: ObjectOutputs | None = None
    time: TimeOutputs | None = None
