"""Reconciling finished sessions: ask the questions, and once they are answered, store the row.

Nothing here waits for the model. ``request_reconciliation`` enqueues the first questions
for the answer worker (origin ``reconcile``, so they are told apart from checkout's);
``maybe_reconcile``, run after each of the worker's batches, moves a session on to its
next round of questions or, when every question is finished, writes its
``reconciliations`` row. Each step derives what to do from the queries and answers in the
database while holding the session's row lock, so repeating a step (a retried batch, two
workers, a restart) changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.answer.payloads import AnswerPayload, PayloadError, answer_from_json
from app.array_blobs import array_of
from app.db import Database
from app.errors import InvalidInputError, NotFoundError
from app.reconcile.announce import announce
from app.reconcile.basket import Belief
from app.reconcile.compare import Discrepancy, compare
from app.reconcile.flag_confidence import FLAG_CALIBRATION, FlagCalibration
from app.reconcile.questions import (
    EVIDENCE,
    Question,
    candidate_skus,
    needed_questions,
    read_beliefs,
    session_evidence,
    session_question,
    step_answers,
)
from app.reconcile.report import QuestionCounts, ReconciliationReport, scan_lines
from app.reconcile.reviews import Review
from app.reconcile.trip import read_trip
from app.video.cart_band import ARRAY_NAME as CART_CELLS
from storage import Answer, Product, QueryStatus, Reconciliation, SessionMemory, SessionStatus
from storage import query_queue as queue
from storage import reconciliations as store
from storage import reviews as review_store
from storage.answering import band_array

log = logging.getLogger("cartmem.reconcile")

ORIGIN = "reconcile"
DEFAULT_CAP = 100  # candidate products asked about per session
_POLL_S = 0.5
_OPEN = (QueryStatus.PENDING.value, QueryStatus.RUNNING.value)


def request_reconciliation(
    database: Database, session_id: str, *, cap: int = DEFAULT_CAP, evidence: str = "windows"
) -> int:
    """Enqueue the first questions of a closed session; how many (0: asked before).

    The candidates are the session_start payload's ``candidate_skus`` known to the
    catalog, else the catalog, at most ``cap`` of them. ``evidence``: how events are read
    (``questions.EVIDENCE``); the first round's questions carry it for every later step.
    """
    if evidence not in EVIDENCE:
        raise InvalidInputError(f"evidence {evidence!r}: choose from {', '.join(EVIDENCE)}.")
    with database.session() as db:
        session = store.lock_session(db, session_id)
        if session is None:
            raise NotFoundError(
                f"no session {session_id!r}; `cartmem sessions list` shows the known ones."
            )
        if session.status != SessionStatus.CLOSED.value:
            raise InvalidInputError(
                f"session {session_id!r} is still open; it is reconciled when it ends."
            )
        if store.has_queries(db, session_id, origin=ORIGIN):
            return 0
        duration = _duration(db, session_id)
        catalog = list(db.scalars(sa.select(Product.sku)))
        candidates = candidate_skus(session.start_info or {}, catalog, cap)
        if not candidates:
            raise InvalidInputError(
                f"there is no product to check session {session_id!r} for: "
                "the catalog is empty (`cartmem catalog add`)."
            )
        _enqueue(
            db,
            session_id,
            (session_question(sku, duration, evidence=evidence) for sku in candidates),
        )
        return len(candidates)


def maybe_reconcile(
    database: Database,
    session_ids: Iterable[str],
    *,
    min_confidence: float = 0.0,
    calibration: FlagCalibration = FLAG_CALIBRATION,
    webhook: bool = False,
) -> list[str]:
    """Advance each session: next questions, or its row once all are finished (flags from
    ``min_confidence`` on, a trip's confidence read by ``calibration``; a webhook
    delivery owed for each row stored when ``webhook``).

    Returns the sessions that have their row now.
    """
    done = []
    for session_id in session_ids:
        with database.session() as db:
            row = _advance(
                db,
                session_id,
                replace=False,
                min_confidence=min_confidence,
                calibration=calibration,
                webhook=webhook,
            )
            if row is not None:
                done.append(session_id)
    return done


def reconcile_now(
    database: Database,
    session_id: str,
    *,
    recompute: bool = False,
    wait_s: float = 0.0,
    cap: int = DEFAULT_CAP,
    evidence: str = "windows",
    min_confidence: float = 0.0,
    calibration: FlagCalibration = FLAG_CALIBRATION,
    webhook: bool = False,
) -> ReconciliationReport:
    """The session's reconciliation, asking its questions first if nobody has.

    ``recompute`` derives the row again from the stored answers and the scans as they are
    now (the answers are not asked again). Waits up to ``wait_s`` seconds for the answer
    worker to finish the questions; the report says ``waiting`` if it has not. A row
    written now flags discrepancies from ``min_confidence`` on (a trip's confidence read
    by ``calibration``).
    """
    request_reconciliation(database, session_id, cap=cap, evidence=evidence)
    deadline = time.monotonic() + wait_s
    while True:
        with database.session() as db:
            row = _advance(
                db,
                session_id,
                replace=recompute,
                min_confidence=min_confidence,
                calibration=calibration,
                webhook=webhook,
            )
            if row is not None or time.monotonic() >= deadline:
                return _report(db, session_id, row)
        time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))


def _advance(
    db: Session,
    session_id: str,
    *,
    replace: bool,
    min_confidence: float,
    calibration: FlagCalibration,
    webhook: bool,
) -> Reconciliation | None:
    """Enqueue the next round of questions, or store (and announce) the row; None while
    questions are open."""
    if store.lock_session(db, session_id) is None:
        return None
    rows = store.session_queries(db, session_id, origin=ORIGIN)
    if not rows or any(q.status in _OPEN for q, _ in rows):
        return None
    duration = _duration(db, session_id)
    answers = {Question.of(q.kind, q.params): _readable(a) for q, a in rows}
    evidence = session_evidence(answers)
    candidates = [
        q.sku for q in answers if q == session_question(q.sku, duration, evidence=evidence)
    ]
    missing = [q for q in needed_questions(candidates, duration, answers) if q not in answers]
    if missing:
        _enqueue(db, session_id, missing)
        return None
    existing = store.get_reconciliation(db, session_id)
    if existing is not None and not replace:
        return existing
    scanned = _scanned(db, session_id)
    trip = None
    if evidence == "cart":
        steps = step_answers(candidates, duration, answers)
        try:
            cells = _cart_cells(db, session_id)
            trip = read_trip(
                steps, scanned, cells, min_confidence=min_confidence, calibration=calibration
            )
        except ValueError as exc:  # (a model of other activities) each product on its own
            log.warning("session %s is read product by product: %s", session_id, exc)
    if trip is not None:
        beliefs, discrepancies = trip.beliefs, trip.discrepancies
    else:
        beliefs = read_beliefs(candidates, duration, answers)
        discrepancies = compare(beliefs, scanned, min_confidence=min_confidence)
    versions = sorted({a.model_version for _, a in rows if a is not None})
    row = store.save_reconciliation(
        db,
        session_id=session_id,
        expected=[b.to_json() for b in beliefs if b.qty > 0],
        scanned=scan_lines(scanned),
        discrepancies=[d.to_json() for d in discrepancies],
        model_version=(",".join(versions) or "no answers")[:128],
    )
    announce(db, row, webhook=webhook)
    return row


def _report(db: Session, session_id: str, row: Reconciliation | None) -> ReconciliationReport:
    rows = store.session_queries(db, session_id, origin=ORIGIN)
    statuses = [q.status for q, _ in rows]
    counts = QuestionCounts(
        asked=len(rows),
        answered=statuses.count(QueryStatus.DONE.value),
        failed=statuses.count(QueryStatus.FAILED.value),
        waiting=sum(s in _OPEN for s in statuses),
    )
    checked = {q.params["sku"] for q, a in rows if a is not None}
    scanned_now = _scanned(db, session_id)
    unchecked = sorted(sku for sku in scanned_now if sku not in checked)
    reviews = [Review.of(r) for r in review_store.session_reviews(db, session_id)]
    if row is None:
        return ReconciliationReport(
            session_id,
            "waiting",
            counts,
            [],
            scanned_now,
            [],
            unchecked,
            False,
            None,
            None,
            reviews,
        )
    return ReconciliationReport(
        session_id,
        "done",
        counts,
        [Belief.from_json(b) for b in row.expected],
        {line["sku"]: line["qty"] for line in row.scanned},
        [Discrepancy.from_json(d) for d in row.discrepancies],
        unchecked,
        row.scanned != scan_lines(scanned_now),
        row.model_version,
        row.updated_at,
        reviews,
    )


def _readable(answer: Answer | None) -> AnswerPayload | None:
    """A stored answer as reconciliation reads it; one it cannot read counts as failed."""
    if answer is None:
        return None
    try:
        return answer_from_json(answer.payload)
    except PayloadError as exc:
        log.warning("answer to query %d is unreadable, left out: %s", answer.query_id, exc)
        return None


def _duration(db: Session, session_id: str) -> float:
    """Seconds of video in the session's memory: the span every question may ask about."""
    memory = db.get(SessionMemory, session_id)
    if memory is None or memory.frames_seen == 0:
        raise InvalidInputError(
            f"session {session_id!r} ended without any video in its memory; "
            "there is nothing to reconcile."
        )
    if not memory.fps:
        raise InvalidInputError(
            f"session {session_id!r}'s memory does not say its frames per second; "
            "run `cartmem db upgrade`."
        )
    return round(memory.frames_seen / memory.fps, 3)


def _cart_cells(db: Session, session_id: str) -> np.ndarray | None:
    """The cart band the ingest worker kept beside the session's memory (None: not kept)."""
    blob = band_array(db, session_id, CART_CELLS)
    return None if blob is None else array_of(blob)


def _scanned(db: Session, session_id: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for scan in store.list_scans(db, session_id):
        totals[scan.sku] = totals.get(scan.sku, 0) + scan.qty
    return totals


def _enqueue(db: Session, session_id: str, questions: Iterable[Question]) -> None:
    for q in questions:
        queue.enqueue(db, session_id=session_id, kind=q.kind, params=q.params(), origin=ORIGIN)
