"""The three ReST query kinds, their training targets and the predictions ``answer`` returns.

All times are integer frame steps at the memory FPS on the session timeline, and windows are
end-exclusive: ``[start, end)`` covers ``end - start`` steps. ``memory_index`` picks the
session within the ``Memory`` batch the queries are asked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

#: An object (product) image: RGB uint8 ``(H, W, 3)``, any size (the model resizes it).
Image = np.ndarray | torch.Tensor


def _check_window(start: int, end: int) -> None:
    if start < 0 or end <= start:
        raise ValueError(f"A query window needs 0 <= start < end, got [{start}, {end}).")


def _check_image(image: Image) -> None:
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype not in (np.uint8, torch.uint8):
        raise ValueError(
            f"An object image must be RGB uint8 (H, W, 3), got {tuple(image.shape)} {image.dtype}."
        )


@dataclass(frozen=True, eq=False)
class ActivityQuery:
    """What was done with this object in ``[start, end)``? (multi-label over activities)

    ``naming``: a model pair (``model.pair``) also asks its second model, whose per-step
    answers help name a moved product (``ActivityPrediction.naming``); one model ignores it.
    """

    memory_index: int
    object_image: Image
    start: int
    end: int
    naming: bool = False

    def __post_init__(self) -> None:
        _check_window(self.start, self.end)
        _check_image(self.object_image)


@dataclass(frozen=True, eq=False)
class ObjectQuery:
    """Which object did this activity involve in ``[start, end)``? (a box per step)"""

    memory_index: int
    activity: int
    start: int
    end: int

    def __post_init__(self) -> None:
        _check_window(self.start, self.end)


@dataclass(frozen=True, eq=False)
class TimeQuery:
    """When in ``[start, end)`` was this activity done with this object?"""

    memory_index: int
    activity: int
    object_image: Image
    start: int
    end: int

    def __post_init__(self) -> None:
        _check_window(self.start, self.end)
        _check_image(self.object_image)


Query = ActivityQuery | ObjectQuery | TimeQuery


# ---------------------------------------------------------------------- targets (training)
@dataclass(frozen=True, eq=False)
class ActivityTarget:
    """Activity classes (indices into ``cfg.activity_labels``) that happened; may be several.

    ``steps``, when the annotations give it: ``(L, A)`` float per window step, 1 where the
    activity was being done with the product at that step's instant, 0 where not, and -1
    (not judged) on the step either side of each activity, where the boundary is a matter
    of a fraction of a second.
    """

    labels: Sequence[int]
    steps: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ObjectTarget:
    """Ground-truth boxes for each step of the window.

    Attributes:
        boxes: ``(L, 4)`` normalised ``cx, cy, w, h`` in [0, 1] (w, h > 0 where present).
        present: ``(L,)`` bool, True where the step has an annotated box.
    """

    boxes: np.ndarray | torch.Tensor
    present: np.ndarray | torch.Tensor


@dataclass(frozen=True)
class TimeTarget:
    """The activity happened in ``[start, end)`` (session steps, inside the query window)."""

    start: int
    end: int


Target = ActivityTarget | ObjectTarget | TimeTarget


# ---------------------------------------------------------------------- predictions
@dataclass(frozen=True, eq=False)
class ActivityPrediction:
    """``probabilities``: ``(num_activities,)`` independent per-class probabilities over the
    window; ``steps``: ``(L, num_activities)`` the same per window step (row i for step
    ``query.start + i``), whose maximum is ``probabilities``: when each activity happened.
    ``naming``: ``(L, num_activities)`` where a model pair answered a query that asked for
    it (``model.pair``): the geometric mean of all its members' ``steps``, which names a
    moved product more often than any model alone."""

    probabilities: np.ndarray
    steps: np.ndarray | None = None
    naming: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ObjectPrediction:
    """``boxes``: ``(L, 4)`` ``cx, cy, w, h`` in [0, 1], row i for step ``query.start + i``."""

    boxes: np.ndarray


@dataclass(frozen=True)
class TimePrediction:
    """The activity happened in ``[start, end)`` (session steps within the query window).

    ``score`` is the model's probability of that (start, end) pair, in [0, 1].
    """

    start: int
    end: int
    score: float


Prediction = ActivityPrediction | ObjectPrediction | TimePrediction
