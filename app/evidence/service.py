"""``cartmem evidence``: one PNG per flag of a session's reconciliation.

The pixels are the session's evidence thumbnails, kept by ingest (``app.ingest.thumbnails``);
the flags and their events come from the stored reconciliation; boxes from the session's
object answers, where there are any; the product's picture from the catalog.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from sqlalchemy.orm import Session

import storage
from app.answer.payloads import ObjectAnswer
from app.db import Database
from app.errors import InvalidInputError, NotFoundError
from app.evidence.boxes import BoxSource, boxes_for, object_answers
from app.evidence.moments import Moment, frame_times, moments_of
from app.evidence.picture import FlagView, Frame, Strip, draw
from app.reconcile import Discrepancy
from storage import evidence as store
from storage.reconciliations import get_reconciliation

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
KIND_WORDS = {
    "not_scanned": "NOT SCANNED",
    "scanned_not_taken": "SCANNED, NOT TAKEN",
    "quantity": "QUANTITY",
}


@dataclass(frozen=True)
class EvidenceFile:
    """One flag's picture and what it shows."""

    sku: str
    kind: str
    path: str
    moments: list[tuple[float, float]]  # seconds from session start
    frames: list[float]  # the times of the thumbnails shown
    boxes: int  # frames with a box drawn


def write_evidence(
    database: Database, session_id: str, out_dir: Path, *, skus: Iterable[str] | None = None
) -> list[EvidenceFile]:
    """Write ``out_dir/<session>-<rank>-<sku>.png`` for each flag (of ``skus`` only, when
    given), most certain first, and say what each shows."""
    wanted = None if skus is None else set(skus)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with database.session() as db:
        flags = _flags(db, session_id)
        stored = [t for t, _size in store.thumbnail_index(db, session_id)]
        answers = object_answers(store.answered_payloads(db, session_id, kind="object"))
        for rank, flag in enumerate(flags, start=1):
            if wanted is not None and flag.sku not in wanted:
                continue
            view, shown = _view(db, session_id, flag, stored, answers)
            path = out_dir / f"{_safe(session_id)}-{rank:02d}-{_safe(flag.sku)}.png"
            draw(view).image.save(path, "PNG")
            written.append(
                EvidenceFile(
                    sku=flag.sku,
                    kind=flag.kind.value,
                    path=str(path),
                    moments=[(m.start, m.end) for m in shown.moments],
                    frames=shown.frames,
                    boxes=shown.boxes,
                )
            )
    return written


def _flags(db: Session, session_id: str) -> list[Discrepancy]:
    try:
        storage.get_session(db, session_id)
    except storage.RowNotFoundError:
        raise NotFoundError(
            f"no session {session_id!r}; `cartmem sessions list` shows the known ones."
        ) from None
    row = get_reconciliation(db, session_id)
    if row is None:
        raise InvalidInputError(
            f"session {session_id!r} has no reconciliation yet; "
            f"`cartmem reconcile {session_id}` computes it."
        )
    return [Discrepancy.from_json(d) for d in row.discrepancies]


@dataclass
class _Shown:
    moments: list[Moment]
    frames: list[float]
    boxes: int = 0


def _view(
    db: Session,
    session_id: str,
    flag: Discrepancy,
    stored: Sequence[int],
    answers: Sequence[ObjectAnswer],
) -> tuple[FlagView, _Shown]:
    moments = moments_of(flag)
    shown = _Shown(moments, [])
    strips, sources = [], []
    for moment in moments:
        times = frame_times(moment, stored)
        thumbs = store.load_thumbnails(db, session_id, times)
        seconds = [t.time_us / 1e6 for t in thumbs]
        boxes, used = boxes_for(moment, seconds, answers)
        sources += [s for s in used if s not in sources]
        frames = [
            Frame(
                time_s=s,
                image=Image.open(io.BytesIO(t.data)),
                inside=moment.start <= s <= moment.end,
                box=box,
            )
            for t, s, box in zip(thumbs, seconds, boxes, strict=True)
        ]
        shown.frames += seconds
        shown.boxes += sum(b is not None for b in boxes)
        note = "" if frames else _no_frames(stored)
        strips.append(Strip(_strip_title(moment), frames, note))
    if not moments:
        strips.append(Strip("no event", [], "the model saw no event with this product"))
    product = _product(db, flag.sku)
    image = None if product is None else Image.open(io.BytesIO(product.image_png))
    label = f"{flag.sku}: {product.name}" if product is not None else f"{flag.sku}: not in catalog"
    return FlagView(_caption(session_id, flag, sources), strips, image, label), shown


def _caption(session_id: str, flag: Discrepancy, sources: Sequence[BoxSource]) -> list[str]:
    lines = [
        f"{KIND_WORDS.get(flag.kind.value, flag.kind.value)}   {flag.sku}   "
        f"expected {flag.expected}, scanned {flag.scanned}   "
        f"confidence {flag.confidence:.2f}   session {session_id}",
    ]
    if sources:
        where = ", ".join(f"{s.activity} {s.window_from:g}-{s.window_to:g} s" for s in sources)
        lines.append(f"red box: where the model answered the object question ({where})")
    else:
        lines.append("no box: no object question was answered for these moments")
    lines.append("orange: frames within the event; grey: a second before and after")
    return lines


def _strip_title(moment: Moment) -> str:
    e = moment.event
    how = "time answer" if moment.timed else "window"
    status = "counted" if e.counted else "not counted (strongest below the threshold)"
    return (
        f"{e.activity} {moment.start:g}-{moment.end:g} s ({how}), p = {e.probability:.2f}, {status}"
    )


def _no_frames(stored: Sequence[int]) -> str:
    if not stored:
        return "no thumbnails were kept for this session (CARTMEM_EVIDENCE_FPS was 0 at ingest)"
    return "no thumbnail near this moment"


def _product(db: Session, sku: str) -> storage.Product | None:
    try:
        return storage.get_product(db, sku)
    except storage.RowNotFoundError:
        return None


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name)
