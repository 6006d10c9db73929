"""The scans-explain-the-confusions reading, on hand-made per-step answers."""

import numpy as np

from app.bench.scan_repair import (
    find_moments,
    owned_beliefs,
    owners_after_scans,
    scan_repaired_beliefs,
)
from app.reconcile.moves import Moment


def _answer(put: list[float], take_out: list[float] | None = None, n: int = 12) -> dict:
    def pad(xs: list[float]) -> list[float]:
        return xs + [0.0] * (n - len(xs))

    zeros = [0.0] * n
    return {
        "fps": 1.0,
        "take_from_shelf": zeros,
        "put_in_cart": pad(put),
        "inspect": zeros,
        "return_to_shelf": zeros,
        "take_out_of_cart": pad(take_out or []),
    }


def _quantities(steps: dict, scans: dict[str, int]) -> dict[str, int]:
    return {b.sku: b.qty for b in scan_repaired_beliefs(steps, scans)}


def test_a_confusion_the_scans_explain_goes_to_the_scanned_product() -> None:
    # A was put in and scanned, but B's answer peaks higher at A's put: read alone, B is in
    # the cart and A is not; the scans say A is short, and A is B's runner-up
    steps = {"A": _answer([0, 0, 0.5, 0.4]), "B": _answer([0, 0, 0.7]), "C": _answer([])}
    assert _quantities(steps, {"A": 1}) == {"A": 1, "B": 0, "C": 0}
    # with nothing short among the runner-ups the moment stays where it peaked
    assert _quantities(steps, {}) == {"A": 0, "B": 1, "C": 0}


def test_an_item_the_till_missed_stays_above_the_scans() -> None:
    # A goes in at 2 s (B echoes it, weaker) and C at 8 s; the till scanned C only
    steps = {
        "A": _answer([0, 0, 0.9, 0.8]),
        "B": _answer([0, 0, 0.6]),
        "C": _answer([0] * 8 + [0.9]),
    }
    assert _quantities(steps, {"C": 1}) == {"A": 1, "B": 0, "C": 1}


def test_a_take_out_cancels_a_put_and_moves_like_one() -> None:
    # A put in at 1 s and taken out at 6 s: nothing stays
    steps = {"A": _answer([0, 0.9], [0] * 6 + [0.8]), "B": _answer([])}
    assert _quantities(steps, {}) == {"A": 0, "B": 0}
    # B's answer claims the take-out, yet the scans hold no A: the take-out is A's
    steps["B"] = _answer([], [0] * 6 + [0.9])
    assert _quantities(steps, {}) == {"A": 0, "B": 0}


def test_a_moment_moves_only_to_its_strongest_products() -> None:
    # the short product (D) is the moment's fourth: top 3 keeps it with B
    peaks = np.array([0.2, 0.9, 0.5, 0.05, 0.3])  # (P,)
    moments = [Moment(+1, 0, 1, peaks)]
    scanned = np.array([0, 0, 0, 1, 0])
    assert owners_after_scans(moments, scanned, top_k=3) == [1]
    assert owners_after_scans(moments, scanned, top_k=5) == [3]


def test_runs_closer_than_the_gap_are_one_moment() -> None:
    scores = np.array([[0, 0.5, 0, 0.6, 0, 0, 0, 0.7]])  # (P=1, T=8)
    assert [(m.start, m.end) for m in find_moments(scores, +1, 0.3, gap_steps=1)] == [
        (1, 4),
        (7, 8),
    ]
    assert len(find_moments(scores, +1, 0.3, gap_steps=0)) == 3
    assert find_moments(scores, +1, 0.8, gap_steps=1) == []


def test_beliefs_count_each_product_s_moves() -> None:
    moments = [
        Moment(+1, 2, 4, np.array([0.9, 0.1])),
        Moment(+1, 8, 9, np.array([0.2, 0.8])),
        Moment(-1, 12, 13, np.array([0.7, 0.1])),
    ]
    beliefs = {b.sku: b for b in owned_beliefs(["A", "B"], 1.0, moments, [0, 1, 0])}
    assert beliefs["A"].qty == 0 and beliefs["B"].qty == 1
    assert [e.change for e in beliefs["A"].events] == [1, -1]
