"""The whole-trip reading of cart moves against the scans, on hand-made moments."""

import math

import numpy as np
import pytest

from app.reconcile.assignment import Prices, assign, assigned_flags
from app.reconcile.moves import Moment


def _moment(change: int, at: int, peaks: list[float]) -> Moment:
    return Moment(change, at, at + 2, np.array(peaks, dtype=np.float64))


def test_a_put_the_till_missed_is_the_one_flag_and_its_margin_is_the_log_ratio() -> None:
    # products A, B, C; A and C were put in and scanned, B was put in and not scanned
    moments = [
        _moment(+1, 2, [0.9, 0.05, 0.05]),
        _moment(+1, 8, [0.05, 0.8, 0.15]),
        _moment(+1, 14, [0.1, 0.1, 0.8]),
    ]
    best, flags = assigned_flags(moments, np.array([1, 0, 1]))
    assert best.owner == [0, 1, 2]
    assert [(f.product, f.change) for f in flags] == [(1, +1)]
    # without the flag the cheapest reading gives B's put to C (C then one over the scans,
    # the same price) or to none: the margin is the log ratio of B to C at that moment
    assert flags[0].margin == pytest.approx(math.log(0.8 / 0.15), abs=1e-3)


def test_a_confusion_the_scans_explain_raises_no_flag() -> None:
    # A was put in and scanned; B's answer is the stronger at that put
    moments = [_moment(+1, 2, [0.4, 0.6])]
    best, flags = assigned_flags(moments, np.array([1, 0]))
    assert best.owner == [0] and flags == []
    # read without scans the same put is B's
    assert assign(moments, np.array([0, 0])).owner == [1]


def test_a_take_out_goes_only_to_a_product_in_the_cart() -> None:
    # A goes in at 2 s and out at 10 s; C's answer is the stronger at the take-out, but C
    # was never in the cart, and nothing was scanned
    moments = [_moment(+1, 2, [0.9, 0.05, 0.05]), _moment(-1, 10, [0.3, 0.1, 0.6])]
    best, flags = assigned_flags(moments, np.array([0, 0, 0]))
    assert best.owner == [0, 0] and flags == []
    # the same take-out before the put cannot be A's: C's or none
    early = [_moment(-1, 0, [0.3, 0.1, 0.6]), _moment(+1, 2, [0.9, 0.05, 0.05])]
    assert assign(early, np.array([1, 0, 0])).owner[0] is None


def test_a_weak_moment_over_the_scans_is_read_as_spurious_when_that_is_cheaper() -> None:
    moments = [_moment(+1, 2, [0.5, 0.5])]
    cheap = Prices(over=3.0, under=3.0, spurious=0.5)
    assert assign(moments, np.array([0, 0]), cheap).owner == [None]
    assert assign(moments, np.array([0, 0]), Prices(over=0.1, spurious=6.0)).owner in ([0], [1])


def test_a_scanned_product_never_seen_is_flagged_under_with_no_reading_without_it() -> None:
    best, flags = assigned_flags([], np.array([0, 2]))
    assert best.under.tolist() == [0, 2]
    assert [(f.product, f.change, f.margin) for f in flags] == [(1, -2, math.inf)]


def test_each_moment_may_carry_its_own_price_for_dropping_it() -> None:
    # two equally named puts of A, A scanned once: the one cheaper to drop is dropped
    moments = [_moment(+1, 2, [0.9, 0.1]), _moment(+1, 8, [0.9, 0.1])]
    scanned = np.array([1, 0])
    assert assign(moments, scanned, dropped=[0.5, 4.0]).owner == [None, 0]
    assert assign(moments, scanned, dropped=[4.0, 0.5]).owner == [0, None]
    # a moment the answers say is more likely no move at all (negative log odds) is dropped
    # even where counting it would match the scans
    best, flags = assigned_flags(moments[:1], scanned, Prices(under=1.0), dropped=[-2.0])
    assert best.owner == [None] and [(f.product, f.change) for f in flags] == [(0, -1)]
    with pytest.raises(ValueError, match="2 prices for dropping 1 moments"):
        assign(moments[:1], scanned, dropped=[1.0, 1.0])
