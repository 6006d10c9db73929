"""Answer payloads: every kind survives JSON, old rows still read, unknown ones say why."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.answer.payloads import (
    PAYLOAD_VERSION,
    ActivityAnswer,
    Answering,
    ObjectAnswer,
    PayloadError,
    ProductRanking,
    RankedProduct,
    StepScores,
    TimeAnswer,
    TimedBox,
    answer_from_json,
)

ANSWERING = Answering("activity", 2.0, 9.0, False, True, 40, "tiny@abc", 12.5, 4, 80.0)
SCORES = {"take_from_shelf": 0.1, "put_in_cart": 0.75, "inspect": 0.5}

EVERY_KIND = [
    ActivityAnswer(ANSWERING, "SKU-1", SCORES),
    ActivityAnswer(ANSWERING, "SKU-1", SCORES, StepScores(1.0, {"put_in_cart": [0.1, 0.9]})),
    ActivityAnswer(
        ANSWERING,
        "SKU-1",
        SCORES,
        StepScores(1.0, {"put_in_cart": [0.1, 0.9]}, {"put_in_cart": [0.2, 0.7]}),
    ),
    ProductRanking(ANSWERING, "put_in_cart", [RankedProduct("SKU-2", "Tea", 0.8)]),
    ObjectAnswer(
        Answering("object", 2.0, 4.0, True, False, 4),
        "put_in_cart",
        [
            TimedBox(2.0, [0.5, 0.5, 0.1, 0.2]),
            TimedBox(3.0, [0.4, 0.5, 0.1, 0.2]),
        ],
    ),
    TimeAnswer(Answering("time", 0.0, 9.0, False, False, 9), "inspect", "SKU-1", 3.0, 5.0, 0.4),
]


@pytest.mark.parametrize("answer", EVERY_KIND, ids=lambda a: type(a).__name__)
def test_every_kind_reads_back_as_written_through_json(answer) -> None:
    stored = json.loads(json.dumps(answer.to_json()))
    assert stored["version"] == PAYLOAD_VERSION
    assert answer_from_json(stored) == answer


def test_a_model_pairs_naming_answers_sit_beside_the_labels_and_are_not_one() -> None:
    steps = StepScores(2.0, {"put_in_cart": [0.1, 0.9]}, {"put_in_cart": [0.3, 0.6]})
    stored = json.loads(json.dumps(steps.to_json()))
    assert stored == {"fps": 2.0, "put_in_cart": [0.1, 0.9], "naming": {"put_in_cart": [0.3, 0.6]}}
    assert StepScores.from_json(stored) == steps
    # one model's answers (and answers stored before pairs) carry none
    assert StepScores.from_json({"fps": 1.0, "inspect": [0.5]}).naming is None


def test_present_lists_the_activities_at_one_half_or_more() -> None:
    assert EVERY_KIND[0].to_json()["present"] == ["put_in_cart", "inspect"]


def test_a_payload_stored_before_versioning_reads_as_version_one() -> None:
    old = {
        "kind": "time",
        "window": {"from": 0.0, "to": 9.0},
        "window_clipped": False,
        "session_open": False,
        "frames_seen": 9,
        "activity": "inspect",
        "sku": "SKU-1",
        "start": 3.0,
        "end": 5.0,
        "score": 0.4,
        "model_version": "tiny@old",
        "queued_ms": 7.0,
    }
    answer = answer_from_json(old)
    assert isinstance(answer, TimeAnswer) and answer.answering.queued_ms == 7.0


def test_a_newer_version_is_refused_with_a_sentence() -> None:
    newer = EVERY_KIND[0].to_json() | {"version": PAYLOAD_VERSION + 1}
    with pytest.raises(PayloadError, match="newer than this cartmem reads"):
        answer_from_json(newer)


# a busy machine makes drawing slow; the property, not the draw time, is under test
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["kind", "window", "scores", "boxes", "start", "products"]),
        st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers())),
    )
)
def test_anything_else_is_a_payload_error_not_a_crash(junk: dict) -> None:
    try:
        answer = answer_from_json(junk)
    except PayloadError as exc:
        assert "payload" in str(exc)
    else:  # what does read must be a whole answer
        assert isinstance(answer, ActivityAnswer | ProductRanking | ObjectAnswer | TimeAnswer)
