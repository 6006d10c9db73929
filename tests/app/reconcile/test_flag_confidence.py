"""A flag's confidence from its margin, and the calibration fitted on known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.reconcile.flag_confidence import (
    FLAG_CALIBRATION,
    MARGIN_CAP,
    UNCALIBRATED,
    FlagCalibration,
    fit_calibration,
    flag_confidence,
)


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_uncalibrated_is_the_logistic_of_the_margin_and_an_infinite_margin_is_capped() -> None:
    assert flag_confidence(0.0, UNCALIBRATED) == pytest.approx(0.5)
    assert flag_confidence(2.0, UNCALIBRATED) == pytest.approx(_logistic(2.0))
    assert flag_confidence(math.inf, UNCALIBRATED) == pytest.approx(_logistic(MARGIN_CAP))
    assert flag_confidence(math.inf, UNCALIBRATED) < 1.0


def test_a_calibration_moves_the_confidence_of_a_margin() -> None:
    calibration = FlagCalibration(intercept=-1.5, slope=0.5)
    assert flag_confidence(0.0, calibration) == pytest.approx(_logistic(-1.5))
    assert flag_confidence(3.0, calibration) == pytest.approx(_logistic(0.0))


def test_the_shipped_calibration_ranks_wider_margins_as_surer() -> None:
    assert FLAG_CALIBRATION.slope >= 0.0
    assert flag_confidence(0.0) <= flag_confidence(2.0) <= flag_confidence(math.inf)


def test_the_fit_recovers_a_known_calibration() -> None:
    rng = np.random.default_rng(3)
    margins = rng.exponential(1.5, 20_000)
    truth = FlagCalibration(intercept=-1.2, slope=0.8)
    real = rng.random(20_000) < [flag_confidence(m, truth) for m in margins]
    fitted = fit_calibration(margins.tolist(), real.tolist())
    assert fitted.intercept == pytest.approx(truth.intercept, abs=0.1)
    assert fitted.slope == pytest.approx(truth.slope, abs=0.1)


def test_flags_all_at_one_margin_are_given_their_share_of_real_ones() -> None:
    # three in ten flags at margin 0 were real: a flag there is 0.3 sure
    fitted = fit_calibration([0.0] * 10, [True] * 3 + [False] * 7)
    assert flag_confidence(0.0, fitted) == pytest.approx(0.3, abs=1e-4)


def test_a_wider_margin_is_never_made_less_sure() -> None:
    # here wider margins were less often real: the slope stays at 0, not below
    margins = [0.0] * 10 + [4.0] * 10
    real = [True] * 5 + [False] * 5 + [True] * 1 + [False] * 9
    fitted = fit_calibration(margins, real)
    assert fitted.slope == pytest.approx(0.0, abs=1e-6)
    assert flag_confidence(0.0, fitted) == pytest.approx(0.3, abs=1e-3)


@pytest.mark.parametrize(
    ("margins", "real", "message"),
    [
        ([], [], "real flags and false ones"),
        ([0.0, 1.0], [True, True], "real flags and false ones"),
        ([0.0, 1.0], [False, False], "real flags and false ones"),
        ([0.0], [True, False], "1 margins for 2 flags"),
    ],
)
def test_a_fit_without_both_kinds_of_flag_is_refused_in_a_sentence(
    margins: list[float], real: list[bool], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_calibration(margins, real)
