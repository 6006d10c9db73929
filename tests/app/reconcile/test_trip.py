"""A whole trip read with the cart band and the scans, on hand-made answers and bands."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.reconcile.assignment import Prices
from app.reconcile.compare import DiscrepancyKind
from app.reconcile.flag_confidence import UNCALIBRATED, FlagCalibration, flag_confidence
from app.reconcile.trip import read_trip

LABELS = ("take_from_shelf", "put_in_cart", "inspect", "return_to_shelf", "take_out_of_cart")
STEPS = 40


def _steps(**moves: list[tuple[str, int, int, float]]) -> dict:
    """Per product, ``(activity, start, end, answer)`` runs over ``STEPS`` one-second
    steps, 0.02 elsewhere."""
    out = {}
    for sku, runs in moves.items():
        answers = {label: [0.02] * STEPS for label in LABELS}
        for activity, start, end, value in runs:
            answers[activity][start:end] = [value] * (end - start)
        out[sku] = {"fps": 1.0, **answers}
    return out


def _band(*changes: tuple[int, float]) -> np.ndarray:
    """``(STEPS, 4, 6, 3)`` cells of a still cart band with a little noise; from each
    ``(step, change)`` on, one more cell reads ``change`` brighter (an item lies there)."""
    cells = 1.0 + np.random.default_rng(0).normal(0.0, 0.005, (STEPS, 4, 6, 3))
    for k, (step, change) in enumerate(changes):
        cells[step:, k % 4, k // 4] += change
    return cells


#: a put the answers see clearly (product A) and a handling of B that ends where the answers
#: cannot tell the cart from the shelf (the put and the return answers alike)
CLEAR_PUT = [("take_from_shelf", 2, 5, 0.9), ("put_in_cart", 5, 8, 0.9)]
UNSURE_END = [("take_from_shelf", 20, 23, 0.9), ("put_in_cart", 23, 26, 0.6)]
UNSURE_END += [("return_to_shelf", 23, 26, 0.6)]
STEPS_AB = _steps(A=CLEAR_PUT, B=UNSURE_END, C=[])


def test_an_unscanned_put_is_flagged_with_its_time_and_a_scanned_one_is_not() -> None:
    reading = read_trip(STEPS_AB, {}, _band((8, 0.5)))
    assert reading.band
    (flag,) = reading.discrepancies
    assert (flag.kind, flag.sku, flag.expected, flag.scanned) == (
        DiscrepancyKind.NOT_SCANNED,
        "A",
        1,
        0,
    )
    assert flag.margin is not None and flag.margin > 3.0  # no other reading comes near
    assert flag.confidence == pytest.approx(flag_confidence(flag.margin))
    (put,) = flag.evidence
    assert put.time is not None and (put.time.start, put.time.end) == (5.0, 8.0)
    scanned = read_trip(STEPS_AB, {"A": 1}, _band((8, 0.5)))
    assert scanned.discrepancies == []
    assert {b.sku: b.qty for b in scanned.beliefs} == {"A": 1, "B": 0, "C": 0}


def test_the_band_tells_whether_an_unsure_handling_ended_in_the_cart() -> None:
    still = read_trip(STEPS_AB, {"A": 1}, _band((8, 0.5)))
    assert still.discrepancies == []  # the band did not change after B's handling: a return
    changed = read_trip(STEPS_AB, {"A": 1}, _band((8, 0.5), (26, 1.5)))
    assert [(d.sku, d.kind) for d in changed.discrepancies] == [("B", DiscrepancyKind.NOT_SCANNED)]


def test_a_change_of_the_band_no_handling_explains_is_a_move_the_scans_can_claim() -> None:
    # C was put in while the answers saw nothing of it (weakly: 0.2 at its steps), in a
    # store of several products (the change may be a take-out of any of them as well)
    steps = _steps(A=CLEAR_PUT, C=[("put_in_cart", 30, 32, 0.2)], D=[], E=[], F=[], G=[])
    band = _band((8, 0.5), (32, 0.8))
    assert read_trip(steps, {"A": 1, "C": 1}, band).discrepancies == []
    # without the band the scanned C reads as not taken
    alone = read_trip(steps, {"A": 1, "C": 1}, None)
    assert not alone.band
    assert [(d.sku, d.kind) for d in alone.discrepancies] == [
        ("C", DiscrepancyKind.SCANNED_NOT_TAKEN)
    ]


def test_a_scanned_product_never_moved_is_flagged_for_sure() -> None:
    reading = read_trip(STEPS_AB, {"A": 1, "C": 2}, _band((8, 0.5)))
    (flag,) = reading.discrepancies
    assert (flag.sku, flag.kind, flag.expected, flag.scanned) == (
        "C",
        DiscrepancyKind.SCANNED_NOT_TAKEN,
        0,
        2,
    )
    # only by moves the answers and the band give to others could C have two items
    assert flag.confidence > 0.99


def test_a_flags_confidence_is_its_margin_read_by_the_calibration_given() -> None:
    changed = _band((8, 0.5), (26, 1.5))
    plain = read_trip(STEPS_AB, {}, changed, calibration=UNCALIBRATED)
    margins = [d.margin for d in plain.discrepancies]
    assert len(margins) == 2 and all(m is not None for m in margins)
    assert margins == sorted(margins, reverse=True)
    for d, margin in zip(plain.discrepancies, margins, strict=True):
        assert d.confidence == pytest.approx(1.0 / (1.0 + math.exp(-min(margin, 8.0))))
    # a calibration that finds every flag one in ten real, whatever its margin
    flat = read_trip(STEPS_AB, {}, changed, calibration=FlagCalibration(-math.log(9.0), 0.0))
    assert [d.confidence for d in flat.discrepancies] == pytest.approx([0.1, 0.1])
    assert [d.margin for d in flat.discrepancies] == margins
    assert [d.sku for d in flat.discrepancies] == [d.sku for d in plain.discrepancies]


def test_flags_below_the_confidence_asked_for_are_left_out() -> None:
    changed = _band((8, 0.5), (26, 1.5))
    every = read_trip(STEPS_AB, {}, changed)
    assert [d.sku for d in every.discrepancies] == ["A", "B"]  # most certain first
    weakest = every.discrepancies[-1].confidence
    kept = read_trip(STEPS_AB, {}, changed, min_confidence=weakest + 1e-6)
    assert [d.sku for d in kept.discrepancies] == ["A"]


def test_a_band_shorter_than_the_answers_is_not_read_and_no_answers_read_nothing() -> None:
    assert not read_trip(STEPS_AB, {}, _band((8, 0.5))[:20]).band
    empty = read_trip({}, {"A": 1}, None)
    assert empty.beliefs == [] and empty.discrepancies == []


def test_answers_without_an_activity_the_path_reads_are_refused_in_a_sentence() -> None:
    steps = _steps(A=CLEAR_PUT)
    del steps["A"]["inspect"]
    with pytest.raises(ValueError, match="lack inspect"):
        read_trip(steps, {}, None)


def test_a_scanned_item_the_answers_saw_weakly_is_explained_rather_than_flagged() -> None:
    # C's handling ends where the answers cannot tell the cart from the shelf and the band
    # did not change, and the till scanned a C: the scan is strong evidence, so the weak
    # put is believed at the trip's prices
    steps = _steps(A=CLEAR_PUT, C=UNSURE_END, D=[])
    band = _band((8, 0.5))
    assert read_trip(steps, {"A": 1, "C": 1}, band).discrepancies == []
    even = read_trip(steps, {"A": 1, "C": 1}, band, prices=Prices(1.0, 1.0, 6.0))
    assert [(d.sku, d.kind) for d in even.discrepancies] == [
        ("C", DiscrepancyKind.SCANNED_NOT_TAKEN)
    ]


def _with_naming(steps: dict, naming: dict) -> dict:
    """``steps`` carrying other per-step answers under ``naming``, as a model pair's do."""
    return {
        sku: {**payload, "naming": {k: v for k, v in naming[sku].items() if k != "fps"}}
        for sku, payload in steps.items()
    }


def test_a_model_pairs_naming_decides_whose_move_it_was_and_the_lead_where_it_was() -> None:
    # the lead sees a put at steps 5-8 and gives it to A; both models together name B there
    lead = _steps(A=CLEAR_PUT, B=[("put_in_cart", 5, 8, 0.3)])
    both = _steps(A=[("put_in_cart", 5, 8, 0.2)], B=[("put_in_cart", 5, 8, 0.9)])
    band = _band((8, 0.5))
    assert [d.sku for d in read_trip(lead, {}, band).discrepancies] == ["A"]
    named = read_trip(_with_naming(lead, both), {}, band)
    (flag,) = named.discrepancies
    assert (flag.sku, flag.kind) == ("B", DiscrepancyKind.NOT_SCANNED)
    (put,) = flag.evidence
    assert put.time is not None and (put.time.start, put.time.end) == (5.0, 8.0)


def test_a_model_pairs_answers_decide_whether_the_leads_candidate_moved_an_item() -> None:
    # the lead cannot tell B's put from a return (both 0.6) and the band is still; the
    # pair's models together see a put, or a return, clearly
    lead = _steps(B=UNSURE_END, C=[])
    took = [("take_from_shelf", 20, 23, 0.9)]
    into_cart = _steps(B=[*took, ("put_in_cart", 23, 26, 0.9)], C=[])
    onto_shelf = _steps(B=[*took, ("return_to_shelf", 23, 26, 0.9)], C=[])
    still = _band()
    (flag,) = read_trip(_with_naming(lead, into_cart), {}, still).discrepancies
    assert (flag.sku, flag.kind) == ("B", DiscrepancyKind.NOT_SCANNED)
    assert read_trip(_with_naming(lead, onto_shelf), {}, still).discrepancies == []
    # the candidates are the lead's: where it saw no handling, the pair's put is not read
    assert read_trip(_with_naming(_steps(B=[], C=[]), into_cart), {}, still).discrepancies == []


@pytest.mark.parametrize("cut", ["inspect", "put_in_cart"])
def test_naming_answers_that_lack_an_activity_or_steps_are_refused_in_a_sentence(
    cut: str,
) -> None:
    lead = _steps(A=CLEAR_PUT, B=[])
    named = _with_naming(lead, lead)
    if cut == "inspect":
        del named["B"]["naming"]["inspect"]
    else:
        named["A"]["naming"]["put_in_cart"] = named["A"]["naming"]["put_in_cart"][:-3]
    with pytest.raises(ValueError, match=f"naming answers of {'B' if cut == 'inspect' else 'A'}"):
        read_trip(named, {}, _band((8, 0.5)))


def test_naming_answers_are_read_only_where_every_product_has_them() -> None:
    lead = _steps(A=CLEAR_PUT, B=[("put_in_cart", 5, 8, 0.3)])
    both = _steps(A=[("put_in_cart", 5, 8, 0.2)], B=[("put_in_cart", 5, 8, 0.9)])
    partly = _with_naming(lead, both)
    del partly["A"]["naming"]  # a product asked before the pair was deployed
    assert [d.sku for d in read_trip(partly, {}, _band((8, 0.5))).discrepancies] == ["A"]
