"""A session's reconciliation as staff and scripts read it: the stored row plus where it stands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.reconcile.basket import Belief
from app.reconcile.compare import Discrepancy
from app.reconcile.reviews import Review, current_verdicts


@dataclass(frozen=True)
class QuestionCounts:
    asked: int
    answered: int
    failed: int
    waiting: int  # pending or running: the answer worker has not finished them


@dataclass(frozen=True)
class ReconciliationReport:
    """``state`` is ``done`` when the row exists, ``waiting`` while questions are open."""

    session_id: str
    state: str
    questions: QuestionCounts
    expected: list[Belief]
    scanned: dict[str, int]
    discrepancies: list[Discrepancy]
    unchecked: list[str]  # scanned SKUs the model was not asked about: never flagged
    scans_changed: bool  # the till added lines after the row was computed
    model_version: str | None
    computed_at: dt.datetime | None
    reviews: list[Review]  # every staff verdict on the session's flags, oldest first

    def verdicts(self) -> dict[str, Review]:
        """SKU -> staff's current verdict on its flag."""
        return current_verdicts(self.reviews)

    def reviews_of_dropped_flags(self) -> list[Review]:
        """Current verdicts on flags this computation no longer raises (kept, never lost)."""
        flagged = {d.sku for d in self.discrepancies}
        return [r for sku, r in sorted(self.verdicts().items()) if sku not in flagged]

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "state": self.state,
            "questions": vars(self.questions),
            "expected": [b.to_json() for b in self.expected],
            "scanned": scan_lines(self.scanned),
            "discrepancies": [d.to_json() for d in self.discrepancies],
            "unchecked": self.unchecked,
            "scans_changed": self.scans_changed,
            "model_version": self.model_version,
            "computed_at": None if self.computed_at is None else self.computed_at.isoformat(),
            "reviews": [r.to_json() for r in self.reviews],
        }


def scan_lines(scanned: Mapping[str, int]) -> list[dict[str, Any]]:
    """Scanned quantities as stored in ``reconciliations.scanned``: one line per SKU."""
    return [{"sku": sku, "qty": qty} for sku, qty in sorted(scanned.items())]
