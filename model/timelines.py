"""Long activity windows read from one decoding of their session per product.

With ``decoder_self_radius`` r >= 0 and D decoder layers, what the decoder says at step t
of a window [s, e) depends on the window only near its edges: its self-attention stops at
s and e, and each layer carries that r steps further in. A step at least M = D r steps
from both edges is the same function of the memory and the product whatever window holds
it (cross-attention reads the memory near t; the question's own tokens are the same).

So a long window's per-step activity answer is put together from three parts:

- its first M steps, from the window [s, s + 2M) decoded on its own (from the timeline
  when s = 0: the timeline's left edge is the window's);
- the steps s + M .. e - M - 1, from the session's **timeline** for the product: the
  whole session [0, frames_seen) decoded once, as one question, and kept with the
  prepared memory (``PreparedMemory.timelines``) for every later window on it;
- its last M steps, from [e - 2M, e) decoded on its own (from the timeline when the
  window ends where the session's frames do).

A 2M-step edge window gives its first (or last) M steps exactly: their outputs read
layer-k outputs at most (D - k) r steps further in, which read no step past 2M. The
parts are the same functions as the window decoded whole, so the answers are the same up
to float rounding (blocks of steps start elsewhere: sums run in another order;
``tests/model/test_timelines.py`` bounds it). A window is read this way when it is longer
than 4M (two edges cost 4M steps) and at least ``SHARE_FROM`` of its session: its own
decoding would then cost a good part of the timeline's, which later windows reuse. The
rule depends on the question and the memory alone, so a question's answer does not depend
on which questions came before it. Used by ``LongVMNet.answer`` (inference only).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from model.object_token_cache import image_key
from model.queries import ActivityPrediction, ActivityQuery, Image, Prediction, Query

#: A window at least this share of its session's frames is read from the timeline.
SHARE_FROM = 0.25
#: Products whose timeline a session keeps (a 30-minute session's is 1,800 x 5 float32, 36 kB).
TIMELINES_KEPT = 64

TimelineKey = tuple[int, bytes]  # (memory row, the product image's content)


class Timelines:
    """One session's per-step activity probabilities ``(frames_seen, A)`` by product image
    (its content's digest); least recently used first out."""

    def __init__(self, capacity: int = TIMELINES_KEPT) -> None:
        self.capacity = capacity
        self._steps: OrderedDict[bytes, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._steps)

    def get(self, key: bytes) -> np.ndarray | None:
        found = self._steps.get(key)
        if found is not None:
            self._steps.move_to_end(key)
        return found

    def put(self, key: bytes, steps: np.ndarray) -> None:
        self._steps[key] = steps
        self._steps.move_to_end(key)
        while len(self._steps) > self.capacity:
            self._steps.popitem(last=False)


@dataclass(frozen=True)
class _Shared:
    """A window read from a timeline: its edge questions' rows in the plan's queries."""

    key: TimelineKey
    start: int
    end: int
    left: int | None  # None: the window starts with the session, as the timeline does
    right: int | None  # None: it ends where the session's frames do


@dataclass(frozen=True)
class TimelinePlan:
    """What to decode for ``asked``: ``queries`` (the questions not shared, then edge
    windows), the timelines still missing, and how to put each answer back together.

    Attributes:
        queries: questions to answer directly.
        missing: whole-session questions whose timelines are not kept yet, by key; their
            answers' steps go to ``add``.
        margin: M = decoder layers x decoder self radius.
        timelines: the timelines this plan reads, by key (held here, so that a session's
            store may forget them while the batch is answered).
    """

    queries: list[Query]
    missing: dict[TimelineKey, ActivityQuery]
    margin: int
    timelines: dict[TimelineKey, np.ndarray]
    _answers: list[int | _Shared]  # per asked question: its row in ``queries``, or shared

    @classmethod
    def of(
        cls,
        asked: Sequence[Query],
        frames_seen: Sequence[int],
        margin: int,
        timelines: Sequence[Timelines],
        key_of: Callable[[Image], bytes] = image_key,
    ) -> TimelinePlan:
        """The plan for ``asked`` on sessions that saw ``frames_seen`` frames and keep
        ``timelines`` (per memory row); ``margin``: M, the steps next to an edge that a
        window's edges change; ``key_of``: a product image's key (``image_key``)."""
        queries: list[Query] = []
        missing: dict[TimelineKey, ActivityQuery] = {}
        known: dict[TimelineKey, np.ndarray] = {}
        answers: list[int | _Shared] = []
        for query in asked:
            if not _reads_timeline(query, frames_seen, margin):
                answers.append(len(queries))
                queries.append(query)
                continue
            assert isinstance(query, ActivityQuery)  # _reads_timeline says so
            row = query.memory_index
            key = (row, key_of(query.object_image))
            if key not in known and key not in missing:
                found = timelines[row].get(key[1])
                if found is None:
                    missing[key] = dataclasses.replace(query, start=0, end=frames_seen[row])
                else:
                    known[key] = found
            s, e, edge = query.start, query.end, 2 * margin
            # an edge where the session's own is decoded as the timeline decodes it
            left = right = None
            if s > 0:
                left = len(queries)
                queries.append(dataclasses.replace(query, end=s + edge))
            if e < frames_seen[row]:
                right = len(queries)
                queries.append(dataclasses.replace(query, start=e - edge))
            answers.append(_Shared(key, s, e, left, right))
        return cls(queries, missing, margin, known, answers)

    def add(self, key: TimelineKey, steps: np.ndarray) -> None:
        """The timeline of a ``missing`` key: its whole-session answer's steps."""
        self.timelines[key] = steps

    def assemble(self, answered: Sequence[Prediction]) -> list[Prediction]:
        """Each asked question's answer from ``answered`` (one per ``queries`` row) and the
        timelines (every ``missing`` one ``add``ed first)."""
        out: list[Prediction] = []
        m = self.margin
        for plan in self._answers:
            if isinstance(plan, int):
                out.append(answered[plan])
                continue
            timeline = self.timelines.get(plan.key)
            assert timeline is not None, "every missing timeline is decoded before assembling"
            s, e = plan.start, plan.end
            first = timeline[s : s + m] if plan.left is None else _steps(answered[plan.left])[:m]
            last = timeline[e - m : e] if plan.right is None else _steps(answered[plan.right])[-m:]
            steps = np.concatenate((first, timeline[s + m : e - m], last))  # (L, A)
            out.append(ActivityPrediction(steps.max(axis=0), steps))
        return out


def _steps(answer: Prediction) -> np.ndarray:
    assert isinstance(answer, ActivityPrediction) and answer.steps is not None
    return answer.steps


def _reads_timeline(query: Query, frames_seen: Sequence[int], margin: int) -> bool:
    """A long activity window inside its session's frames (see the module's rule)."""
    if not isinstance(query, ActivityQuery) or margin <= 0:
        return False
    if not 0 <= query.memory_index < len(frames_seen):
        return False  # answered directly, where the bad index is reported
    seen = frames_seen[query.memory_index]
    length = query.end - query.start
    return query.end <= seen and length > 4 * margin and length >= SHARE_FROM * seen
