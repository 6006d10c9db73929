"""Which questions reconciliation asks about a session, and reading their answers back.

Three rounds, each decided by the answers of the one before, so that the full set of
questions is a pure function of (candidates, session length, answers so far):

1. per candidate product, one activity question over the whole session;
2. per product whose whole-session answer shows cart activity (``GATE``), activity
   questions over overlapping windows, from which events are counted (``basket.py``);
3. per counted event, a time question over its window: when it happened (the evidence
   staff see, and the order events are replayed in).

Products without cart activity cost one question, so a large catalog stays affordable.

With per-step evidence (``evidence="steps"``) the whole-session question asks for the
answer at every memory step, events are read from those steps (``basket.step_events``) and
carry their own time evidence: one question per candidate product, no later rounds. The
``cart`` evidence asks the same questions and reads the whole trip at once, with the
session's cart band and the till's scans (``trip``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.answer.payloads import ActivityAnswer, AnswerPayload, TimeAnswer
from app.reconcile.basket import (
    PUT,
    RETURN,
    TAKE_OUT,
    Belief,
    TimeEvidence,
    WindowScores,
    belief,
    find_events,
    step_events,
    with_times,
)

# The model learnt from windows that never cut an activity (docs/DATASET.md). Activities
# last up to ~6 s, so windows of 16 s every 8 s hold each one whole in at least one window.
WINDOW_S = 16.0
STRIDE_S = 8.0
# below this a whole-session answer is taken as "no cart activity": the product gets no
# window questions and its belief rests on the whole-session answer alone
GATE = 0.2


@dataclass(frozen=True)
class Question:
    """One activity (``activity`` None) or time question about ``sku`` in ``[start, end)``."""

    kind: str
    sku: str
    start: float
    end: float
    activity: str | None = None
    steps: bool = False  # an activity question that also wants the answer per memory step
    cart: bool = False  # its answers are read as a whole trip (``trip``), not per product

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"sku": self.sku, "from": self.start, "to": self.end}
        if self.activity is not None:
            params["activity"] = self.activity
        if self.steps:
            params["steps"] = True
        if self.cart:
            params["cart"] = True
        return params

    @classmethod
    def of(cls, kind: str, params: Mapping[str, Any]) -> Question:
        activity = params.get("activity") if kind == "time" else None
        start, end = float(params["from"]), float(params["to"])
        steps, cart = bool(params.get("steps")), bool(params.get("cart"))
        return cls(kind, params["sku"], start, end, activity, steps, cart)


#: the answer to each finished question; None when it failed
Answers = Mapping[Question, AnswerPayload | None]


def candidate_skus(start_info: Mapping[str, Any], catalog: Sequence[str], cap: int) -> list[str]:
    """The session_start payload's candidates that the catalog knows, else the catalog; at most
    ``cap``. A SKU without a catalog image cannot be looked for."""
    known = set(catalog)
    given = start_info.get("candidate_skus")
    pool = [s for s in given if s in known] if given else sorted(catalog)
    return list(dict.fromkeys(pool))[:cap]


def tiles(duration: float) -> list[tuple[float, float]]:
    """Windows of ``WINDOW_S`` every ``STRIDE_S`` seconds covering ``[0, duration)``."""
    out = []
    start = 0.0
    while True:
        end = min(start + WINDOW_S, duration)
        out.append((start, end))
        if end >= duration:
            return out
        start += STRIDE_S


#: how reconciliation reads a product's events: from activity questions over overlapping
#: windows (and a time question per event), from one question's per-step answer, or from
#: those of every product together with the cart band and the scans (``trip``)
EVIDENCE = ("windows", "steps", "cart")


def session_question(sku: str, duration: float, *, evidence: str = "windows") -> Question:
    if evidence not in EVIDENCE:
        raise ValueError(f"evidence {evidence!r}: choose from {', '.join(EVIDENCE)}")
    steps = evidence in ("steps", "cart")
    return Question("activity", sku, 0.0, duration, steps=steps, cart=evidence == "cart")


def session_evidence(answers: Answers) -> str:
    """How this session's questions are read (its first round says so)."""
    if any(q.cart for q in answers):
        return "cart"
    return "steps" if any(q.steps for q in answers) else "windows"


def step_answers(
    candidates: Sequence[str], duration: float, answers: Answers
) -> dict[str, dict[str, Any]]:
    """Each candidate's per-step answer (``StepScores`` JSON) where its whole-session
    question was answered with one; the others were not checked."""
    evidence = session_evidence(answers)
    out = {}
    for sku in candidates:
        answer = answers.get(session_question(sku, duration, evidence=evidence))
        if isinstance(answer, ActivityAnswer) and answer.steps is not None:
            out[sku] = answer.steps.to_json()
    return out


def needed_questions(
    candidates: Sequence[str], duration: float, answers: Answers
) -> list[Question]:
    """Every question the answers so far call for (including those already asked)."""
    needed: dict[Question, None] = {}
    evidence = session_evidence(answers)
    steps = evidence != "windows"
    for sku in candidates:
        first = session_question(sku, duration, evidence=evidence)
        needed[first] = None
        if steps or not _touched(answers.get(first)):
            continue
        windows = [Question("activity", sku, a, b) for a, b in tiles(duration)]
        needed.update(dict.fromkeys(windows))
        if all(q in answers for q in windows):
            for e in find_events(_scores(windows, answers)):
                if e.counted:
                    needed[Question("time", sku, e.start, e.end, e.activity)] = None
    return list(needed)


def read_beliefs(candidates: Sequence[str], duration: float, answers: Answers) -> list[Belief]:
    """Beliefs of every candidate whose whole-session question was answered.

    Call once every question of ``needed_questions`` is finished; a failed window or time
    question only removes that piece of evidence.
    """
    beliefs = []
    evidence = session_evidence(answers)
    steps = evidence != "windows"
    for sku in candidates:
        first = session_question(sku, duration, evidence=evidence)
        answer = answers.get(first)
        if not isinstance(answer, ActivityAnswer):
            continue  # never answered: this product was not checked
        if steps and answer.steps is not None:
            beliefs.append(belief(sku, step_events(answer.steps.to_json(), first.start)))
            continue
        if _touched(answer):
            asked = [Question("activity", sku, a, b) for a, b in tiles(duration)]
        else:
            asked = [first]
        times = {
            (q.activity, q.start, q.end): TimeEvidence(a.start, a.end, a.score)
            for q, a in answers.items()
            if q.kind == "time" and q.sku == sku and isinstance(a, TimeAnswer) and q.activity
        }
        events = with_times(find_events(_scores(asked, answers)), times)
        beliefs.append(belief(sku, events))
    return beliefs


def _touched(answer: AnswerPayload | None) -> bool:
    if not isinstance(answer, ActivityAnswer):
        return False
    return max(answer.scores.get(a, 0.0) for a in (PUT, TAKE_OUT, RETURN)) >= GATE


def _scores(questions: Iterable[Question], answers: Answers) -> list[WindowScores]:
    out = []
    for q in questions:
        answer = answers.get(q)
        if isinstance(answer, ActivityAnswer):
            out.append(WindowScores(q.start, q.end, answer.scores))
    return out
