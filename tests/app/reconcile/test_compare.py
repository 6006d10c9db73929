"""Expected basket against scans: every kind of discrepancy, most certain first."""

import pytest

from app.reconcile.basket import PUT, TAKE_OUT, Event, belief
from app.reconcile.compare import Discrepancy, DiscrepancyKind, compare


def put(p: float, at: float = 0.0) -> Event:
    return Event(PUT, 1, at, at + 16.0, p, p >= 0.5)


def take_out(p: float, at: float) -> Event:
    return Event(TAKE_OUT, -1, at, at + 16.0, p, p >= 0.5)


def test_each_kind_of_discrepancy() -> None:
    beliefs = [
        belief("TAKEN", [put(0.9)]),
        belief("TWICE", [put(0.9), put(0.8, 40.0)]),
        belief("PUT-BACK", [put(0.9), take_out(0.9, 40.0)]),
        belief("NEVER", [put(0.1)]),
        belief("MATCH", [put(0.9)]),
    ]
    scanned = {"TWICE": 1, "PUT-BACK": 1, "NEVER": 2, "MATCH": 1}
    found = {d.sku: d for d in compare(beliefs, scanned)}
    assert {sku: (d.kind, d.expected, d.scanned) for sku, d in found.items()} == {
        "TAKEN": (DiscrepancyKind.NOT_SCANNED, 1, 0),
        "TWICE": (DiscrepancyKind.QUANTITY, 2, 1),
        "PUT-BACK": (DiscrepancyKind.SCANNED_NOT_TAKEN, 0, 1),
        "NEVER": (DiscrepancyKind.SCANNED_NOT_TAKEN, 0, 2),
    }
    # an over-scan of a product that is in the cart is a quantity discrepancy too
    (over,) = compare([belief("ONE", [put(0.9)])], {"ONE": 3})
    assert (over.kind, over.expected, over.scanned) == (DiscrepancyKind.QUANTITY, 1, 3)


def test_confidence_follows_the_evidence_and_orders_the_list() -> None:
    beliefs = [belief("WEAK", [put(0.55)]), belief("STRONG", [put(0.97)])]
    found = compare(beliefs, {})
    assert [d.sku for d in found] == ["STRONG", "WEAK"]
    assert [d.confidence for d in found] == pytest.approx([0.97, 0.55])
    # not seen at all (best window 0.1) is a stronger "not taken" than nearly seen (0.45)
    beliefs = [belief("NEAR", [put(0.45)]), belief("FAR", [put(0.1)])]
    found = compare(beliefs, {"NEAR": 1, "FAR": 1})
    assert [(d.sku, d.confidence) for d in found] == [
        ("FAR", pytest.approx(0.9)),
        ("NEAR", pytest.approx(0.55)),
    ]


def test_below_the_minimum_confidence_a_discrepancy_is_no_flag() -> None:
    beliefs = [belief("WEAK", [put(0.55)]), belief("STRONG", [put(0.97)])]
    assert [d.sku for d in compare(beliefs, {}, min_confidence=0.9)] == ["STRONG"]
    assert [d.sku for d in compare(beliefs, {}, min_confidence=0.55)] == ["STRONG", "WEAK"]
    assert compare(beliefs, {}, min_confidence=0.98) == []


def test_scanned_products_nobody_asked_about_are_never_flagged() -> None:
    assert compare([belief("ASKED", [put(0.9)])], {"ASKED": 1, "OTHER": 4}) == []


def test_evidence_carries_the_events_and_survives_json() -> None:
    (d,) = compare([belief("TAKEN", [put(0.9, 24.0)])], {})
    assert [(e.activity, e.start, e.counted) for e in d.evidence if e.counted] == [
        (PUT, 24.0, True)
    ]
    again = Discrepancy.from_json(d.to_json())
    assert (again.kind, again.sku, again.evidence) == (d.kind, d.sku, d.evidence)


def test_a_flags_margin_survives_json_and_only_a_trips_flag_has_one() -> None:
    (d,) = compare([belief("TAKEN", [put(0.9, 24.0)])], {})
    assert d.margin is None and "margin" not in d.to_json()
    with_margin = Discrepancy(d.kind, d.sku, d.expected, d.scanned, 0.3, d.evidence, 1.2345678)
    assert with_margin.to_json()["margin"] == 1.234568
    assert Discrepancy.from_json(with_margin.to_json()).margin == 1.234568
