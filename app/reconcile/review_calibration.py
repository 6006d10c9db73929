"""A store's own flag calibration, fitted on its staff's verdicts.

The shipped calibration (``flag_confidence.FLAG_CALIBRATION``) says how often a flag of
each margin was real on validation trips with one unscanned item each. A store whose till
misses items more or less often than that sees another share of real flags at every
margin, and its staff's verdicts say which: each reviewed flag of a trip's reading keeps
its margin (``Discrepancy.margin``), and its current verdict says whether it was real.
``cartmem reviews calibrate`` fits the calibration on those and prints the setting that
applies it (``CARTMEM_RECONCILE_FLAG_CALIBRATION``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.db import Database
from app.errors import InvalidInputError
from app.reconcile.flag_confidence import (
    FlagCalibration,
    fit_calibration,
    flag_confidence,
    reliability,
)
from app.reconcile.reviews import Review, verdicts_by_session
from storage import reviews as review_store
from storage.models import ReviewVerdict

#: fewer verdicts than this fit noise, not the store
MIN_FLAGS = 30


@dataclass(frozen=True)
class ReviewCalibration:
    flags: int  # reviewed flags with a margin, their current verdicts
    confirmed: int
    without_margin: int  # reviewed flags of other readings, which have none
    current: FlagCalibration
    fitted: FlagCalibration
    brier_current: float  # on these flags: the mean squared gap of confidence and verdict
    brier_fitted: float

    @property
    def setting(self) -> str:
        """The value of ``CARTMEM_RECONCILE_FLAG_CALIBRATION`` that applies the fit."""
        return f"{self.fitted.intercept:.3f},{self.fitted.slope:.3f}"

    def to_json(self) -> dict[str, Any]:
        return {
            "flags": self.flags,
            "confirmed": self.confirmed,
            "dismissed": self.flags - self.confirmed,
            "without_margin": self.without_margin,
            "current": {"intercept": self.current.intercept, "slope": self.current.slope},
            "fitted": {"intercept": self.fitted.intercept, "slope": self.fitted.slope},
            "brier_current": self.brier_current,
            "brier_fitted": self.brier_fitted,
            "setting": f"CARTMEM_RECONCILE_FLAG_CALIBRATION={self.setting}",
        }


def calibrate_from_reviews(
    database: Database, current: FlagCalibration, *, minimum: int = MIN_FLAGS
) -> ReviewCalibration:
    """Fit the flag calibration on the current verdicts of every reviewed flag that has a
    margin; an ``InvalidInputError`` that says what is missing where there are fewer than
    ``minimum`` of them, or no verdict of one kind."""
    with database.session() as db:
        reviews = [Review.of(row) for row in review_store.all_reviews(db)]
    verdicts = [v for current in verdicts_by_session(reviews).values() for v in current]
    labelled = [
        (float(r.flag["margin"]), r.verdict == ReviewVerdict.CONFIRMED.value)
        for r in verdicts
        if r.flag.get("margin") is not None
    ]
    if len(labelled) < minimum:
        raise InvalidInputError(
            f"{len(labelled)} reviewed flags have a margin (flags of the `cart` reading); "
            f"a calibration needs at least {minimum}: review more flags first."
        )
    margins, real = [m for m, _ in labelled], [r for _, r in labelled]
    try:
        fitted = fit_calibration(margins, real)
    except ValueError as exc:
        raise InvalidInputError(
            f"the {len(labelled)} reviewed flags are all confirmed or all dismissed: {exc}."
        ) from exc
    return ReviewCalibration(
        flags=len(labelled),
        confirmed=sum(real),
        without_margin=len(verdicts) - len(labelled),
        current=current,
        fitted=fitted,
        brier_current=_brier(margins, real, current),
        brier_fitted=_brier(margins, real, fitted),
    )


def _brier(margins: Sequence[float], real: Sequence[bool], calibration: FlagCalibration) -> float:
    brier = reliability([flag_confidence(m, calibration) for m in margins], real)["brier"]
    return float(brier)
