"""Staff verdicts on flags: confirmed or dismissed, kept with who, when and why.

A review is appended, never updated: the latest review of a (session, SKU) is the
current verdict and the earlier ones are its history. Reviews live beside the
reconciliation row, not in it, so ``cartmem reconcile --recompute`` (which replaces the
row) never loses one; a review whose flag a recomputation dropped stays, marked as such
in the report. Each review keeps the flag as it was reviewed (kind, counts, confidence,
the events with their times): that snapshot is what ``export_reviews`` turns into labels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.db import Database
from app.errors import InvalidInputError, NotFoundError
from storage import reconciliations as store
from storage import reviews as review_store
from storage.models import FlagReview, ReviewVerdict

VERDICTS = tuple(v.value for v in ReviewVerdict)


@dataclass(frozen=True)
class Review:
    session_id: str
    sku: str
    verdict: str
    note: str | None
    reviewer: str
    reviewed_at: dt.datetime
    flag: dict[str, Any]  # the discrepancy's JSON when it was reviewed
    model_version: str

    @classmethod
    def of(cls, row: FlagReview) -> Review:
        return cls(
            row.session_id,
            row.sku,
            row.verdict,
            row.note,
            row.reviewer,
            row.reviewed_at,
            dict(row.flag),
            row.model_version,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "sku": self.sku,
            "verdict": self.verdict,
            "note": self.note,
            "reviewer": self.reviewer,
            "reviewed_at": self.reviewed_at.isoformat(),
            "flag": self.flag,
            "model_version": self.model_version,
        }


def review_flag(
    database: Database,
    session_id: str,
    sku: str,
    *,
    verdict: str,
    reviewer: str,
    note: str | None = None,
) -> Review:
    """Record staff's ``verdict`` on the session's current flag for ``sku``."""
    if verdict not in VERDICTS:
        raise InvalidInputError(f"a review is one of {', '.join(VERDICTS)}, not {verdict!r}.")
    if verdict == ReviewVerdict.DISMISSED and not (note and note.strip()):
        raise InvalidInputError(
            "dismissing a flag needs --note saying why (it becomes the label for the next model)."
        )
    if not reviewer.strip():
        raise InvalidInputError("a review needs the reviewer's name (--by NAME).")
    with database.session() as db:
        row = store.get_reconciliation(db, session_id)
        if row is None:
            raise NotFoundError(
                f"session {session_id!r} has no reconciliation to review; "
                f"`cartmem reconcile {session_id} --wait 60` computes it."
            )
        flags = {d["sku"]: d for d in row.discrepancies}
        if sku not in flags:
            shown = ", ".join(sorted(flags)) or "none"
            raise InvalidInputError(
                f"session {session_id!r} has no flag for {sku!r} (its flags: {shown})."
            )
        saved = review_store.add_review(
            db,
            session_id=session_id,
            sku=sku,
            verdict=verdict,
            note=note.strip() if note else None,
            reviewer=reviewer.strip(),
            flag=flags[sku],
            model_version=row.model_version,
        )
        return Review.of(saved)


def session_reviews(database: Database, session_id: str) -> list[Review]:
    """Every review of the session, oldest first."""
    with database.session() as db:
        return [Review.of(r) for r in review_store.session_reviews(db, session_id)]


def current_verdicts(reviews: Sequence[Review]) -> dict[str, Review]:
    """SKU -> its latest review."""
    latest: dict[str, Review] = {}
    for r in reviews:  # oldest first, so the last one wins
        latest[r.sku] = r
    return latest


def verdicts_by_session(reviews: Sequence[Review]) -> dict[str, list[Review]]:
    """Session id -> the latest review of each of its flagged products, sessions in order;
    ``reviews`` by session, oldest first (as ``storage.reviews.all_reviews`` gives them)."""
    by_session: dict[str, list[Review]] = {}
    for r in reviews:
        by_session.setdefault(r.session_id, []).append(r)
    return {sid: list(current_verdicts(h).values()) for sid, h in sorted(by_session.items())}
