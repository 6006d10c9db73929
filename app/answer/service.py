"""Running the query worker from settings, and asking one question the way a checkout would."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.answer.metrics import AnswerMetrics
from app.answer.worker import AnswerStats, AnswerWorker
from app.db import Database
from app.errors import CartmemError, InvalidInputError
from app.health import DatabaseProbe, start_health
from app.logs import configure_logging
from app.model_runtime import load_model
from app.privacy.housekeeper import start_housekeeper
from app.settings import Settings
from storage import QueryStatus
from storage import query_queue as queue


def run_answer_worker(
    settings: Settings,
    *,
    until_idle_s: float | None = None,
    after_batch: Callable[[list[int]], None] | None = None,
) -> AnswerStats:
    """Answer queries until SIGTERM/SIGINT, or ``until_idle_s`` without any."""
    configure_logging(settings)
    database = Database(settings)
    metrics = AnswerMetrics()
    health = start_health(
        settings,
        metrics.registry,
        [DatabaseProbe(database)],
        refreshers=[lambda: metrics.read_queue(database)],
    )
    if after_batch is None:  # reconciliation moves on as its questions are answered
        from app.reconcile import answer_batch_hook
        from app.reconcile.flag_confidence import configured

        after_batch = answer_batch_hook(
            database,
            min_confidence=settings.reconcile_min_confidence,
            calibration=configured(settings.flag_calibration),
            webhook=bool(settings.webhook_url),
        )
    try:
        model = load_model(settings)
    except BaseException:
        health.stop()
        raise
    worker = AnswerWorker(settings, database, model, after_batch=after_batch, metrics=metrics)
    # moving on = finishing a batch, whatever became of its queries
    health.watch(progress=lambda: worker.stats.batches, pending=lambda: metrics.last_due > 0)
    sender = None
    if settings.webhook_url:  # the till's webhook: deliveries owed by stored reconciliations
        from app.reconcile.webhook import webhook_sender

        sender = webhook_sender(database, settings).start()
    housekeeper = start_housekeeper(database, settings)  # retention (docs/PRIVACY.md)
    previous = {
        s: signal.signal(s, lambda *_: worker.request_stop())
        for s in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return worker.run(until_idle_s=until_idle_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if sender is not None:
            sender.stop()
        if housekeeper is not None:
            housekeeper.stop()
        health.stop()
        database.dispose()


@dataclass(frozen=True)
class AskResult:
    query_id: int
    status: str
    error: str | None
    answer: dict[str, Any] | None


def ask(
    settings: Settings,
    *,
    session_id: str,
    kind: str,
    params: dict[str, Any],
    timeout_s: float,
    inline: bool,
) -> AskResult:
    """Enqueue a query and wait for its answer; ``inline`` answers it in this process."""
    database = Database(settings)
    try:
        with database.session() as db:
            query_id = queue.enqueue(db, session_id=session_id, kind=kind, params=params)
        if inline:
            worker = AnswerWorker(settings, database, load_model(settings))
            worker.run(until_idle_s=0.0)
        deadline = time.monotonic() + timeout_s
        while True:
            with database.session() as db:
                found = queue.get_query(db, query_id)
                assert found is not None
                row, answer = found
                if row.status in (QueryStatus.DONE.value, QueryStatus.FAILED.value):
                    return AskResult(
                        query_id, row.status, row.error, answer.payload if answer else None
                    )
            if time.monotonic() >= deadline:
                raise CartmemError(
                    f"query {query_id} is still {row.status} after {timeout_s:g} s; is "
                    "`cartmem answer` running? (or pass --inline to answer here)"
                )
            time.sleep(0.2)
    finally:
        database.dispose()


def window(start: float, end: float) -> dict[str, float]:
    if end <= start:
        raise InvalidInputError(f"--to ({end:g}) must be after --from ({start:g}).")
    return {"from": start, "to": end}
