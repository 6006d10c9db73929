"""The expected basket against what the till scanned: the discrepancies, most certain first."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.reconcile.basket import Belief, Event


class DiscrepancyKind(enum.StrEnum):
    NOT_SCANNED = "not_scanned"  # the model saw it go into the cart; the till has none
    SCANNED_NOT_TAKEN = "scanned_not_taken"  # the till has it; the model saw none end up there
    QUANTITY = "quantity"  # both have it, in different numbers


@dataclass(frozen=True)
class Discrepancy:
    """One product where the expected count and the scanned count differ.

    ``confidence`` is the probability, under the belief's count distribution, that the
    cart really holds more (under-scan) or fewer (over-scan) items than were scanned.
    ``evidence`` holds the events behind the belief, with their windows and time answers.
    A trip's reading (``trip``) also gives the flag's ``margin`` in nats, as its
    calibration reads it, so that staff's verdicts can calibrate it again
    (``review_calibration``); other readings have none.
    """

    kind: DiscrepancyKind
    sku: str
    expected: int
    scanned: int
    confidence: float
    evidence: tuple[Event, ...]
    margin: float | None = None

    def to_json(self) -> dict[str, Any]:
        margin = {} if self.margin is None else {"margin": round(self.margin, 6)}
        return {
            "kind": self.kind.value,
            "sku": self.sku,
            "expected": self.expected,
            "scanned": self.scanned,
            "confidence": round(self.confidence, 6),
            **margin,
            "evidence": [e.to_json() for e in self.evidence],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Discrepancy:
        return cls(
            DiscrepancyKind(data["kind"]),
            data["sku"],
            data["expected"],
            data["scanned"],
            data["confidence"],
            tuple(Event.from_json(e) for e in data["evidence"]),
            data.get("margin"),
        )


def compare(
    beliefs: Iterable[Belief], scanned: Mapping[str, int], *, min_confidence: float = 0.0
) -> list[Discrepancy]:
    """Discrepancies of every product the model was asked about, at least
    ``min_confidence`` sure, most certain first.

    A scanned product the model was not asked about has no belief and is never flagged:
    no evidence is not evidence of absence.
    """
    found = []
    for b in beliefs:
        n = scanned.get(b.sku, 0)
        if b.qty > n:
            kind = DiscrepancyKind.NOT_SCANNED if n == 0 else DiscrepancyKind.QUANTITY
            confidence = b.more_than(n)
        elif b.qty < n:
            kind = DiscrepancyKind.SCANNED_NOT_TAKEN if b.qty == 0 else DiscrepancyKind.QUANTITY
            confidence = b.fewer_than(n)
        else:
            continue
        if confidence < min_confidence:
            continue
        found.append(Discrepancy(kind, b.sku, b.qty, n, confidence, b.events))
    return sorted(found, key=lambda d: (-d.confidence, d.sku))
