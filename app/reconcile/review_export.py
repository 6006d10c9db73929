"""Staff reviews as labels in the dataset format (``docs/DATASET.md``, "Labels from reviews").

Per reviewed session, ``annotations/<session_id>.json`` holds what staff's current
verdicts say happened: a confirmed flag's events (the moments the model saw, with their
activity and times) become ``spans``; a dismissed flag's events become
``rejected_spans``, moments where that activity did *not* happen to that product. Every
verdict is listed under ``reviews`` with who, when and why. The video itself is not
exported (it lives in the store's recordings, named by the session id): these files are
the labels to join with it. ``reviews.json`` says what was exported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.db import Database
from app.reconcile.reviews import Review, verdicts_by_session
from storage import reviews as review_store
from storage.models import ShoppingSession

FORMAT = "cartmem.reviews/1"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class ExportSummary:
    out: Path
    sessions: int
    confirmed: int
    dismissed: int
    files: list[Path]


def export_reviews(
    database: Database, out: Path, *, session_ids: Sequence[str] | None = None
) -> ExportSummary:
    with database.session() as db:
        rows = review_store.all_reviews(db, session_ids=session_ids)
        reviews = [Review.of(r) for r in rows]
        stores = {
            r.session_id: (db.get(ShoppingSession, r.session_id) or ShoppingSession()).store_id
            for r in reviews
        }
    by_session = verdicts_by_session(reviews)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    files = []
    verdicts: list[Review] = []
    for session_id, current in by_session.items():
        verdicts += current
        path = out / "annotations" / f"{_UNSAFE.sub('_', session_id)}.json"
        path.write_text(json.dumps(_annotation(session_id, stores[session_id], current), indent=2))
        files.append(path)
    summary = ExportSummary(
        out,
        len(by_session),
        sum(r.verdict == "confirmed" for r in verdicts),
        sum(r.verdict == "dismissed" for r in verdicts),
        files,
    )
    manifest = {
        "format": FORMAT,
        "sessions": summary.sessions,
        "confirmed": summary.confirmed,
        "dismissed": summary.dismissed,
        "annotations": [str(p.relative_to(out)) for p in files],
    }
    (out / "reviews.json").write_text(json.dumps(manifest, indent=2))
    return summary


def _annotation(session_id: str, store: str | None, verdicts: list[Review]) -> dict[str, Any]:
    spans: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for r in sorted(verdicts, key=lambda r: r.sku):
        for moment in _moments(r):
            (spans if r.verdict == "confirmed" else rejected).append(moment)
    record: dict[str, Any] = {
        "video_id": session_id,
        "source": FORMAT,
        "spans": sorted(spans, key=lambda s: (s["start"], s["sku"])),
        "rejected_spans": sorted(rejected, key=lambda s: (s["start"], s["sku"])),
        "reviews": [
            {
                "sku": r.sku,
                "verdict": r.verdict,
                "kind": r.flag.get("kind"),
                "expected": r.flag.get("expected"),
                "scanned": r.flag.get("scanned"),
                "note": r.note,
                "reviewer": r.reviewer,
                "reviewed_at": r.reviewed_at.isoformat(),
                "model_version": r.model_version,
            }
            for r in sorted(verdicts, key=lambda r: r.sku)
        ],
    }
    if store:
        record["store"] = store
    return record


def _moments(review: Review) -> list[dict[str, Any]]:
    """The counted events behind the flag, as spans (their time answer where there is one)."""
    out = []
    for event in review.flag.get("evidence", []):
        if not event.get("counted"):
            continue
        start = event["start"] if event.get("start") is not None else event["from"]
        end = event["end"] if event.get("end") is not None else event["to"]
        out.append({"activity": event["activity"], "sku": review.sku, "start": start, "end": end})
    return out
