"""A claimed question turned into model queries, and the predictions into its answer: where
a model pair's naming answers are asked for and what they decide."""

from __future__ import annotations

import numpy as np

from app.answer.from_predictions import build_answer
from app.answer.payloads import ActivityAnswer, Answering, ProductRanking
from app.answer.requests import SessionView, build_request
from model import ActivityPrediction, ActivityQuery
from storage.query_queue import ClaimedQuery

LABELS = ("take_from_shelf", "put_in_cart", "inspect", "return_to_shelf", "take_out_of_cart")
IMAGES = {sku: np.zeros((8, 8, 3), dtype=np.uint8) for sku in ("A", "B", "C")}
SESSION = SessionView("s-1", "closed", frames_seen=20, fps=1.0)
ANSWERING = Answering("activity", 0.0, 10.0, False, False, 20)


def _request(params: dict):
    claimed = ClaimedQuery(1, "s-1", "activity", params, 0, "api")
    return build_request(
        claimed, SESSION, labels=LABELS, product_images=IMAGES, catalog=sorted(IMAGES)
    )


def _prediction(put: list[float], naming_put: list[float] | None = None) -> ActivityPrediction:
    steps = np.zeros((len(put), len(LABELS)))
    steps[:, 1] = put
    naming = None
    if naming_put is not None:
        naming = np.zeros_like(steps)
        naming[:, 1] = naming_put
    return ActivityPrediction(steps.max(axis=0), steps, naming)


def test_naming_is_asked_for_per_step_answers_and_rankings_only() -> None:
    [steps] = _request({"sku": "A", "from": 0, "to": 10, "steps": True}).model_queries
    [plain] = _request({"sku": "A", "from": 0, "to": 10}).model_queries
    ranking = _request({"activity": "put_in_cart", "from": 0, "to": 10}).model_queries
    assert isinstance(steps, ActivityQuery) and steps.naming
    assert isinstance(plain, ActivityQuery) and not plain.naming
    assert len(ranking) == 3 and all(q.naming for q in ranking)


def test_a_pair_ranks_products_by_both_models_and_one_model_by_its_own() -> None:
    request = _request({"activity": "put_in_cart", "from": 0, "to": 10})
    # the lead alone would name A; both models together name B
    one = [_prediction([0.9, 0.2]), _prediction([0.6, 0.5]), _prediction([0.1, 0.1])]
    pair = [
        _prediction([0.9, 0.2], [0.3, 0.2]),
        _prediction([0.6, 0.5], [0.7, 0.4]),
        _prediction([0.1, 0.1], [0.1, 0.1]),
    ]
    by_lead = build_answer(request, one, ANSWERING, fps=1.0, labels=LABELS, names={})
    by_pair = build_answer(request, pair, ANSWERING, fps=1.0, labels=LABELS, names={})
    assert isinstance(by_lead, ProductRanking) and isinstance(by_pair, ProductRanking)
    assert [(p.sku, p.score) for p in by_lead.products] == [("A", 0.9), ("B", 0.6), ("C", 0.1)]
    assert [(p.sku, p.score) for p in by_pair.products] == [("B", 0.7), ("A", 0.3), ("C", 0.1)]


def test_per_step_answers_carry_the_pairs_naming_beside_the_leads() -> None:
    request = _request({"sku": "A", "from": 0, "to": 2, "steps": True})
    answer = build_answer(
        request, [_prediction([0.9, 0.2], [0.3, 0.25])], ANSWERING, fps=1.0, labels=LABELS, names={}
    )
    assert isinstance(answer, ActivityAnswer) and answer.steps is not None
    assert answer.steps.by_label["put_in_cart"] == [0.9, 0.2]
    assert answer.steps.naming is not None and answer.steps.naming["put_in_cart"] == [0.3, 0.25]
    assert answer.scores["put_in_cart"] == 0.9  # what was done: the lead's answer
