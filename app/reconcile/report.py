"""A session's reconciliation as staff and scripts read it: the stored row plus where it stands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.reconcile.basket import Belief
from app.reconcile.compare import Discrepancy


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
        }


def scan_lines(scanned: Mapping[str, int]) -> list[dict[str, Any]]:
    """Scanned quantities as stored in ``reconciliations.scanned``: one line per SKU."""
    return [{"sku": sku, "qty": qty} for sku, qty in sorted(scanned.items())]
