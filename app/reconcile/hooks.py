"""Adapters that connect reconciliation to the two workers' callbacks.

- ``IngestEngine(..., on_session_closed=session_closed_hook(database))``: a session that
  ended gets its first questions, after the commit that stored its final memory.
- ``AnswerWorker(..., after_batch=answer_batch_hook(database))``: after each batch, the
  sessions whose reconcile questions were in it move on (next questions, or their row).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.db import Database
from app.errors import CartmemError
from app.reconcile.flag_confidence import FLAG_CALIBRATION, FlagCalibration
from app.reconcile.service import DEFAULT_CAP, ORIGIN, maybe_reconcile, request_reconciliation
from storage.reconciliations import sessions_of_queries

log = logging.getLogger("cartmem.reconcile")


def session_closed_hook(
    database: Database, *, cap: int = DEFAULT_CAP, evidence: str = "windows"
) -> Callable[[str], None]:
    def on_session_closed(session_id: str) -> None:
        try:
            asked = request_reconciliation(database, session_id, cap=cap, evidence=evidence)
        except CartmemError as exc:
            # ingest goes on; `cartmem reconcile SESSION` asks again once the cause is fixed
            log.warning("session %s is not reconciled: %s", session_id, exc)
            return
        log.info("session %s: %d reconciliation questions asked", session_id, asked)

    return on_session_closed


def answer_batch_hook(
    database: Database,
    *,
    min_confidence: float = 0.0,
    calibration: FlagCalibration = FLAG_CALIBRATION,
    webhook: bool = False,
) -> Callable[[list[int]], None]:
    def after_batch(query_ids: list[int]) -> None:
        with database.session() as db:
            session_ids = sessions_of_queries(db, query_ids, origin=ORIGIN)
        reconciled = maybe_reconcile(
            database,
            session_ids,
            min_confidence=min_confidence,
            calibration=calibration,
            webhook=webhook,
        )
        for session_id in reconciled:
            log.info("session %s reconciled", session_id)

    return after_batch
