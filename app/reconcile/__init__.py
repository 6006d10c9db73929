"""Checkout reconciliation: the basket the video shows against what the till scanned."""

from app.reconcile.basket import Belief, Event, TimeEvidence
from app.reconcile.compare import Discrepancy, DiscrepancyKind
from app.reconcile.hooks import answer_batch_hook, session_closed_hook
from app.reconcile.report import QuestionCounts, ReconciliationReport
from app.reconcile.scans import ScanLine, add_scan, list_scans
from app.reconcile.service import (
    DEFAULT_CAP,
    ORIGIN,
    maybe_reconcile,
    reconcile_now,
    request_reconciliation,
)

__all__ = [
    "DEFAULT_CAP",
    "ORIGIN",
    "Belief",
    "Discrepancy",
    "DiscrepancyKind",
    "Event",
    "QuestionCounts",
    "ReconciliationReport",
    "ScanLine",
    "TimeEvidence",
    "add_scan",
    "answer_batch_hook",
    "list_scans",
    "maybe_reconcile",
    "reconcile_now",
    "request_reconciliation",
    "session_closed_hook",
]
