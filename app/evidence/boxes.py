"""The product's box on a frame, where the model answered an object question for it.

Reconciliation asks no object questions; a checkout service or staff may have
(``cartmem ask object``). An object answer names an activity and a window, and gives a box
per memory step: it is drawn on a frame of a moment with the same activity when one of
its steps falls on the frame's time. Nothing is interpolated or guessed: no answer, no box.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.answer.payloads import ObjectAnswer, PayloadError, answer_from_json
from app.evidence.moments import CONTEXT_S, Moment

Box = tuple[float, float, float, float]  # normalised (cx, cy, w, h)


@dataclass(frozen=True)
class BoxSource:
    """Which object answer a box comes from, for the caption."""

    activity: str
    window_from: float
    window_to: float


def object_answers(payloads: Iterable[dict]) -> list[ObjectAnswer]:
    """The readable object answers among stored payloads (others are left out)."""
    out = []
    for payload in payloads:
        try:
            answer = answer_from_json(payload)
        except PayloadError:
            continue
        if isinstance(answer, ObjectAnswer) and answer.boxes:
            out.append(answer)
    return out


def boxes_for(
    moment: Moment, times_s: Sequence[float], answers: Sequence[ObjectAnswer]
) -> tuple[list[Box | None], list[BoxSource]]:
    """The box on each frame of ``moment`` (at ``times_s``), or None, and the answers used.

    A later answer (asked later) wins where two cover one frame.
    """
    lo, hi = moment.start - CONTEXT_S, moment.end + CONTEXT_S
    boxes: list[Box | None] = [None] * len(times_s)
    used: list[BoxSource] = []
    for answer in answers:
        window = answer.answering
        if answer.activity != moment.event.activity:
            continue
        if window.window_to < lo or window.window_from > hi:
            continue
        steps = sorted(b.t for b in answer.boxes)
        # a step stands for the half-step around it
        tolerance = min((b - a for a, b in itertools.pairwise(steps)), default=1.0) / 2
        hit = False
        for i, t in enumerate(times_s):
            nearest = min(answer.boxes, key=lambda b: abs(b.t - t))
            if abs(nearest.t - t) <= tolerance + 1e-6 and len(nearest.box) == 4:
                cx, cy, w, h = nearest.box
                boxes[i] = (cx, cy, w, h)
                hit = True
        if hit:
            used.append(BoxSource(answer.activity, window.window_from, window.window_to))
    return boxes, used
