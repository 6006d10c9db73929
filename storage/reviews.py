"""Staff verdicts on flags: appended, never updated, so no recomputation can lose one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import FlagReview


def add_review(
    db: Session,
    *,
    session_id: str,
    sku: str,
    verdict: str,
    note: str | None,
    reviewer: str,
    flag: dict[str, Any],
    model_version: str,
) -> FlagReview:
    review = FlagReview(
        session_id=session_id,
        sku=sku,
        verdict=verdict,
        note=note,
        reviewer=reviewer,
        flag=flag,
        model_version=model_version,
    )
    db.add(review)
    db.flush()
    return review


def session_reviews(db: Session, session_id: str) -> Sequence[FlagReview]:
    """Every review of the session's flags, oldest first (the last per SKU is current)."""
    return db.scalars(
        sa.select(FlagReview)
        .where(FlagReview.session_id == session_id)
        .order_by(FlagReview.reviewed_at, FlagReview.id)
    ).all()


def all_reviews(db: Session, *, session_ids: Sequence[str] | None = None) -> Sequence[FlagReview]:
    """Reviews of every session (or of ``session_ids``), by session, oldest first."""
    query = sa.select(FlagReview)
    if session_ids is not None:
        query = query.where(FlagReview.session_id.in_(session_ids))
    return db.scalars(
        query.order_by(FlagReview.session_id, FlagReview.reviewed_at, FlagReview.id)
    ).all()
