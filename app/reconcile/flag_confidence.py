"""What a flag's confidence means: the share of flags like it that are real.

A trip's reading (``trip``) raises a flag where the most probable reading of its moves
leaves a product over or under its scans, with a margin: how many nats less probable the
best reading without that difference is. The logistic of the margin would be the flag's
probability if the reading's odds were the world's, and they are not: most flags have a
margin near 0 (the logistic's 0.5) and far fewer than half of those are real. So the
confidence is ``logistic(intercept + slope * min(margin, MARGIN_CAP))``, its two numbers
fitted on the flags of validation trips, each planted with one unscanned item, by
``app.bench.flag_calibration`` (the measurement is in docs/RESULTS.md). A checkout can then
read 0.3 as "three such flags in ten are real", in trips like those.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: margins above this many nats are read as this many: an infinite margin (no reading
#: without the flag exists, e.g. a scanned product no move was found for) is not surer
#: than a large one
MARGIN_CAP = 8.0


@dataclass(frozen=True)
class FlagCalibration:
    """The log odds that a flag is real: ``intercept + slope * margin`` (nats)."""

    intercept: float
    slope: float


#: confidence bins of ``reliability``: [lower, upper), the last one closed
BINS = tuple(i / 10 for i in range(11))

#: the logistic of the margin itself, as if the reading's odds were the world's
UNCALIBRATED = FlagCalibration(intercept=0.0, slope=1.0)
#: fitted on the 192 flags of five plantings of the 24 validation trips of ``VAL20``, read
#: with the cart band and counted and named by the shipped model pair's answers
#: (``tiny-pair``, a lead and two partners; 94 real; Brier score 0.226 -> 0.178 there): a
#: flag at margin 0 is real about one time in six, at margin 1 two times in three
#: (docs/RESULTS.md, "Counting with the pair's answers"). Before the pair's answers
#: counted the moves (session 35): -1.944 + 2.362 x margin.
FLAG_CALIBRATION = FlagCalibration(intercept=-1.526, slope=2.279)
#: the same fit for one model's answers (``tiny`` alone: 205 flags, 58 real; Brier 0.277
#: -> 0.196): what a deployment that runs one model sets
#: (``CARTMEM_RECONCILE_FLAG_CALIBRATION=-1.277,1.093``; docs/RESULTS.md, "What a trip's
#: flag confidence means")
ONE_MODEL_FLAG_CALIBRATION = FlagCalibration(intercept=-1.277, slope=1.093)


def configured(values: tuple[float, float] | None) -> FlagCalibration:
    """The calibration a deployment set (``CARTMEM_RECONCILE_FLAG_CALIBRATION``: intercept
    and slope), or the shipped one."""
    return FLAG_CALIBRATION if values is None else FlagCalibration(*values)


def capped(margin: float) -> float:
    """A flag's margin as a calibration reads it (and as a flag keeps it: JSON has no
    infinity)."""
    return min(margin, MARGIN_CAP)


def flag_confidence(margin: float, calibration: FlagCalibration = FLAG_CALIBRATION) -> float:
    """The probability that a flag of ``margin`` nats is real, under ``calibration``."""
    log_odds = calibration.intercept + calibration.slope * capped(margin)
    return 0.5 * (1.0 + math.tanh(log_odds / 2.0))


def fit_calibration(margins: Sequence[float], real: Sequence[bool]) -> FlagCalibration:
    """The calibration under which flags of these ``margins`` are most probably ``real``
    or not (logistic regression on the capped margin; the slope kept at 0 or above, since a
    wider margin never makes a flag less likely). A ``ValueError`` without both real and
    false flags, which cannot be told apart then."""
    if len(margins) != len(real):
        raise ValueError(f"{len(margins)} margins for {len(real)} flags")
    y = np.asarray(real, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        raise ValueError("a calibration needs real flags and false ones")
    x = np.minimum(np.asarray(margins, dtype=np.float64), MARGIN_CAP)
    from scipy.optimize import minimize  # only fitting needs it, not reading a flag

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + theta[1] * x
        p = 0.5 * (1.0 + np.tanh(z / 2.0))
        # log(1 + e^z) - y z, the negative log likelihood, without overflow
        nll = float(np.sum(np.logaddexp(0.0, z) - y * z))
        error = p - y
        return nll, np.array([error.sum(), (error * x).sum()])

    fitted = minimize(loss, np.zeros(2), jac=True, bounds=[(None, None), (0.0, None)])
    return FlagCalibration(intercept=float(fitted.x[0]), slope=float(fitted.x[1]))


def reliability(confidences: Sequence[float], real: Sequence[bool]) -> dict[str, Any]:
    """Per confidence bin: its flags, their mean confidence and the share of them that are
    real; with the Brier score and the log loss over all flags (None without flags)."""
    confidence = np.asarray(confidences, dtype=np.float64)
    truth = np.asarray(real, dtype=np.float64)
    bins = []
    for lower, upper in itertools.pairwise(BINS):
        inside = (confidence >= lower) & ((confidence < upper) | (upper == 1.0))
        if inside.any():
            bins.append(
                {
                    "confidence": [lower, upper],
                    "flags": int(inside.sum()),
                    "mean_confidence": float(confidence[inside].mean()),
                    "real": float(truth[inside].mean()),
                }
            )
    if confidence.size == 0:
        return {"flags": 0, "real": 0, "brier": None, "log_loss": None, "bins": bins}
    clipped = np.clip(confidence, 1e-6, 1 - 1e-6)
    log_loss = -np.mean(truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped))
    return {
        "flags": int(confidence.size),
        "real": int(truth.sum()),
        "brier": float(np.mean((confidence - truth) ** 2)),
        "log_loss": float(log_loss),
        "bins": bins,
    }
