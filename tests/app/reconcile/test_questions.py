"""Which questions a session needs, round by round, and reading the answers back."""

import itertools
from typing import Any

import pytest

from app.answer.payloads import ActivityAnswer, Answering, StepScores, TimeAnswer
from app.reconcile.basket import PUT, TAKE, TAKE_OUT
from app.reconcile.questions import (
    GATE,
    STRIDE_S,
    WINDOW_S,
    Question,
    candidate_skus,
    needed_questions,
    read_beliefs,
    session_question,
    tiles,
)

LABELS = (TAKE, PUT, "inspect", "return_to_shelf", TAKE_OUT)


ANSWERING = Answering("activity", 0.0, 40.0, False, False, 40)


def scores(steps: StepScores | None = None, **given: float) -> ActivityAnswer:
    return ActivityAnswer(
        ANSWERING, "SKU", {label: given.get(label, 0.01) for label in LABELS}, steps
    )


@pytest.mark.parametrize("duration", [5.0, 16.0, 17.0, 61.5, 120.0])
def test_tiles_cover_the_session_with_overlapping_windows(duration: float) -> None:
    ws = tiles(duration)
    assert ws[0][0] == 0.0 and ws[-1][1] == duration
    assert all(b - a <= WINDOW_S for a, b in ws)
    assert all(a2 - a1 == STRIDE_S for (a1, _), (a2, _) in itertools.pairwise(ws))
    # any activity of at most STRIDE_S seconds lies whole inside some window
    for t in range(int(duration - STRIDE_S) + 1):
        assert any(a <= t and t + STRIDE_S <= b for a, b in ws), t


def test_candidates_come_from_session_start_else_the_catalog() -> None:
    catalog = ["SKU-3", "SKU-1", "SKU-2"]
    assert candidate_skus({}, catalog, cap=10) == ["SKU-1", "SKU-2", "SKU-3"]
    assert candidate_skus({}, catalog, cap=2) == ["SKU-1", "SKU-2"]
    given = {"candidate_skus": ["SKU-2", "NOT-IN-CATALOG", "SKU-2", "SKU-3"]}
    assert candidate_skus(given, catalog, cap=10) == ["SKU-2", "SKU-3"]


def test_rounds_follow_the_answers() -> None:
    duration = 40.0
    first = [session_question(s, duration) for s in ("QUIET", "BUSY")]
    assert needed_questions(["QUIET", "BUSY"], duration, {}) == first
    answers: dict[Question, Any] = {
        first[0]: scores(put_in_cart=GATE / 2),
        first[1]: scores(put_in_cart=0.9),
    }
    windows = [Question("activity", "BUSY", a, b) for a, b in tiles(duration)]
    assert needed_questions(["QUIET", "BUSY"], duration, answers) == first + windows
    # a put in the second window only: one counted event, one time question over its window
    answers |= {q: scores() for q in windows}
    answers[windows[1]] = scores(put_in_cart=0.8)
    timed = Question("time", "BUSY", windows[1].start, windows[1].end, PUT)
    assert needed_questions(["QUIET", "BUSY"], duration, answers) == [*first, *windows, timed]
    assert timed.params() == {"sku": "BUSY", "from": 8.0, "to": 24.0, "activity": PUT}
    assert Question.of("time", timed.params()) == timed

    answers[timed] = TimeAnswer(ANSWERING, PUT, "BUSY", 12.0, 15.0, 0.6)
    beliefs = {b.sku: b for b in read_beliefs(["QUIET", "BUSY"], duration, answers)}
    assert beliefs["BUSY"].qty == 1 and beliefs["QUIET"].qty == 0
    (event,) = [e for e in beliefs["BUSY"].events if e.counted]
    assert event.time is not None and (event.time.start, event.time.end) == (12.0, 15.0)
    # the quiet product rests on its whole-session answer: a small chance it is in the cart
    assert beliefs["QUIET"].confidence == pytest.approx(GATE / 2)


def test_failed_questions_remove_only_their_evidence() -> None:
    duration = 20.0
    lost, kept = session_question("LOST", duration), session_question("KEPT", duration)
    windows = [Question("activity", "KEPT", a, b) for a, b in tiles(duration)]
    answers: dict[Question, Any] = {lost: None, kept: scores(put_in_cart=0.9)}
    answers |= {windows[0]: None, windows[1]: scores(put_in_cart=0.9)}
    timed = Question("time", "KEPT", windows[1].start, windows[1].end, PUT)
    assert timed in needed_questions(["LOST", "KEPT"], duration, answers)
    answers[timed] = None
    beliefs = read_beliefs(["LOST", "KEPT"], duration, answers)
    assert [(b.sku, b.qty) for b in beliefs] == [("KEPT", 1)]
    assert [e.time for e in beliefs[0].events if e.counted] == [None]


def test_with_per_step_evidence_one_question_per_product_is_the_whole_reconciliation() -> None:
    duration = 20.0
    first = [session_question(s, duration, evidence="steps") for s in ("A", "B")]
    assert first[0].params()["steps"] is True
    assert Question.of("activity", first[0].params()) == first[0]  # the flag survives the row
    assert needed_questions(["A", "B"], duration, {}) == [
        session_question(s, duration) for s in ("A", "B")
    ]  # nothing asked yet: the caller chooses the evidence
    put = [0.0] * 20
    put[5] = put[6] = 0.9
    answers = {
        first[0]: scores(StepScores(1.0, {PUT: put}), put_in_cart=0.9),
        first[1]: scores(StepScores(1.0, {PUT: [0.05] * 20})),
    }
    # busy or quiet, no later round: the steps hold the events and their times
    assert needed_questions(["A", "B"], duration, answers) == first
    beliefs = {b.sku: b for b in read_beliefs(["A", "B"], duration, answers)}
    assert beliefs["A"].qty == 1 and beliefs["B"].qty == 0
    (event,) = [e for e in beliefs["A"].events if e.counted]
    assert (event.start, event.end) == (5.0, 7.0) and event.time is not None
