"""Evidence thumbnails: small pictures of a session's video, and the answers that carry boxes.

The ingest commit writes thumbnails (``save_thumbnails``, called inside
``commit_ingest_state``'s transaction); ``cartmem evidence`` reads them back. What is kept,
at which rate and how small, is the app's decision; this module stores bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import Answer, EvidenceThumbnail, Query, QueryStatus

JPEG = "image/jpeg"


@dataclass(frozen=True)
class Thumbnail:
    """One encoded picture of the session's video at ``time_us`` (microseconds from its start)."""

    time_us: int
    width: int
    height: int
    data: bytes
    media_type: str = JPEG


def save_thumbnails(
    db: Session, session_id: str, *, added: Sequence[Thumbnail], dropped: Iterable[int]
) -> None:
    """Store ``added`` and delete the stored thumbnails at ``dropped`` times.

    Idempotent, so that a commit replayed after a crash changes nothing: a time already
    stored keeps its first picture (replays are deterministic, so it is the same one).
    """
    dropped = sorted(set(dropped))
    if dropped:
        db.execute(
            sa.delete(EvidenceThumbnail).where(
                EvidenceThumbnail.session_id == session_id,
                EvidenceThumbnail.time_us.in_(dropped),
            )
        )
    if not added:
        return
    stored = set(
        db.scalars(
            sa.select(EvidenceThumbnail.time_us).where(
                EvidenceThumbnail.session_id == session_id,
                EvidenceThumbnail.time_us.in_([t.time_us for t in added]),
            )
        )
    )
    for thumb in added:
        if thumb.time_us in stored:
            continue
        stored.add(thumb.time_us)
        db.add(
            EvidenceThumbnail(
                session_id=session_id,
                time_us=thumb.time_us,
                media_type=thumb.media_type,
                width=thumb.width,
                height=thumb.height,
                data=thumb.data,
            )
        )


def thumbnail_index(db: Session, session_id: str) -> list[tuple[int, int]]:
    """(time in microseconds, bytes) of every stored thumbnail of the session, in time order;
    the pictures themselves are not read."""
    rows = db.execute(
        sa.select(EvidenceThumbnail.time_us, sa.func.length(EvidenceThumbnail.data))
        .where(EvidenceThumbnail.session_id == session_id)
        .order_by(EvidenceThumbnail.time_us)
    ).all()
    return [(int(t), int(n)) for t, n in rows]


def load_thumbnails(db: Session, session_id: str, times_us: Iterable[int]) -> list[Thumbnail]:
    """The stored thumbnails at ``times_us`` (those that exist), in time order."""
    wanted = sorted(set(times_us))
    if not wanted:
        return []
    rows = db.scalars(
        sa.select(EvidenceThumbnail)
        .where(EvidenceThumbnail.session_id == session_id, EvidenceThumbnail.time_us.in_(wanted))
        .order_by(EvidenceThumbnail.time_us)
    ).all()
    return [Thumbnail(r.time_us, r.width, r.height, r.data, r.media_type) for r in rows]


def answered_payloads(db: Session, session_id: str, *, kind: str) -> list[dict[str, Any]]:
    """The payloads of the session's answered queries of ``kind``, whoever asked, oldest first."""
    return list(
        db.scalars(
            sa.select(Answer.payload)
            .join(Query, Answer.query_id == Query.id)
            .where(
                Query.session_id == session_id,
                Query.kind == kind,
                Query.status == QueryStatus.DONE.value,
            )
            .order_by(Query.id)
        )
    )
