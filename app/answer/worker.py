"""The query worker: claim pending queries, answer a batch in one model call, store answers.

Each round claims up to ``batch`` queries under a lease; reads, in one transaction, the
sessions with their memories' state, the catalog and the memories the device cache lacks;
checks every query; answers all of them with one ``LongVMNet.answer`` call; then writes
every answer and failure in one transaction, only for queries whose lease it still holds.
Queries that can never be answered fail at once with a sentence; others are retried with
backoff and fail after ``max_attempts``. The database is reached only through ``storage``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from app.answer.from_predictions import build_answer
from app.answer.memory_cache import MemoryCache
from app.answer.metrics import AnswerMetrics
from app.answer.outcomes import Answered, Invalid, Outcome, TryLater, retry_decision
from app.answer.payloads import Answering
from app.answer.requests import (
    InvalidQuery,
    NotReadyYet,
    Request,
    SessionView,
    build_request,
    decode_product_image,
)
from app.answer.waker import Waker
from app.db import Database
from app.errors import CartmemError
from app.model_runtime import LoadedModel
from app.settings import Settings
from model import PreparedMemory
from storage import answering as store
from storage import query_queue as queue

log = logging.getLogger("cartmem.answer")


@dataclass
class AnswerStats:
    answered: int = 0
    failed: int = 0
    retried: int = 0
    batches: int = 0
    lost_leases: int = 0


@dataclass(frozen=True)
class _BatchInputs:
    """What one round read from the database for its claimed queries."""

    states: dict[str, store.SessionState]
    names: dict[str, str]  # sku -> product name
    memories: dict[str, PreparedMemory]  # session id -> prepared memory on the device


class AnswerWorker:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        model: LoadedModel,
        *,
        worker_id: str | None = None,
        after_batch: Callable[[list[int]], None] | None = None,
        metrics: AnswerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.net = model.net
        self.model_version = model.version
        self.cfg = self.net.cfg
        # the rate of memories stored before their rate was recorded; every other memory
        # is read at the rate it was written at (``session_memories.fps``)
        self.fallback_fps = settings.memory_fps or self.cfg.fps
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.cache = MemoryCache(settings.answer_cache_sessions, model.device, self.net.prepare)
        self.after_batch = after_batch or (lambda _ids: None)
        self.stats = AnswerStats()
        self.metrics = metrics or AnswerMetrics()
        self._images: dict[str, tuple[str, np.ndarray]] = {}  # sku -> (image sha, pixels)
        self._stop = False

    def request_stop(self) -> None:
        self._stop = True

    def run(
        self, *, until_idle_s: float | None = None, max_batches: int | None = None
    ) -> AnswerStats:
        waker = Waker(self.settings, self.database)
        idle_since = time.monotonic()
        try:
            while not self._stop:
                if max_batches is not None and self.stats.batches >= max_batches:
                    break
                self.metrics.roll_rate()
                try:
                    handled = self.run_once()
                except CartmemError as exc:  # e.g. the database is down: say so, wait, go on
                    log.error("%s", exc)
                    handled = 0
                    time.sleep(min(5.0, self.settings.query_poll_s))
                if handled:
                    idle_since = time.monotonic()
                    continue
                if until_idle_s is not None and time.monotonic() - idle_since >= until_idle_s:
                    break
                waker.wait(self.settings.query_poll_s)
        finally:
            waker.close()
        return self.stats

    def run_once(self) -> int:
        """Claim and handle one batch; returns how many queries it claimed."""
        with self.database.session() as db:
            claimed = queue.claim(
                db,
                worker=self.worker_id,
                limit=self.settings.query_batch_size,
                lease_s=self.settings.query_lease_s,
                max_attempts=self.settings.query_max_attempts,
            )
        if not claimed:
            return 0
        log.debug("claimed %d queries", len(claimed), extra={"worker": self.worker_id})
        began = time.perf_counter()
        inputs = self._read(claimed)
        outcomes: dict[int, Outcome] = {}
        requests = self._requests(claimed, inputs, outcomes)
        if requests:
            try:
                outcomes.update(self._answer(requests, inputs, began))
            except Exception as exc:  # a fault in the model or the device: retry later
                log.exception("answering a batch failed")
                reason = f"answering failed ({type(exc).__name__}: {exc})"
                outcomes.update({r.claimed.id: TryLater(reason) for r in requests})
        self._finish(claimed, outcomes, began)
        self.stats.batches += 1
        self.metrics.batches.inc()
        self.after_batch([c.id for c in claimed])
        return len(claimed)

    # ------------------------------------------------------------------ steps
    def _read(self, claimed: Sequence[queue.ClaimedQuery]) -> _BatchInputs:
        """Sessions, catalog and the memories the cache lacks, in one transaction; the
        memories read are prepared for questions after it ends (model work holds no
        transaction open)."""
        session_ids = sorted({c.session_id for c in claimed})
        with self.database.session() as db:
            states = store.session_states(db, session_ids)
            catalog = store.catalog_entries(db)
            changed = [e.sku for e in catalog.values() if self._image_sha(e.sku) != e.image_sha256]
            for sku, png in store.product_images(db, changed).items():
                self._images[sku] = (catalog[sku].image_sha256, decode_product_image(png))
            memories: dict[str, PreparedMemory] = {}
            missing = []
            for sid, state in states.items():
                if state.memory_version is None:
                    continue
                cached = self.cache.get(sid, state.memory_version)
                if cached is None:
                    missing.append(sid)
                else:
                    memories[sid] = cached
            loaded = store.memory_arrays(db, missing)
        for sid, blobs in loaded.items():
            memories[sid] = self.cache.put(sid, states[sid].memory_version, blobs)
            self.metrics.memory_loads.inc()
        self.metrics.memories_cached.set(len(self.cache))
        for sku in [s for s in self._images if s not in catalog]:
            del self._images[sku]
        return _BatchInputs(states, {sku: e.name for sku, e in catalog.items()}, memories)

    def _image_sha(self, sku: str) -> str:
        return self._images[sku][0] if sku in self._images else ""

    def _requests(
        self,
        claimed: Sequence[queue.ClaimedQuery],
        inputs: _BatchInputs,
        outcomes: dict[int, Outcome],
    ) -> list[Request]:
        images = {sku: pixels for sku, (_sha, pixels) in self._images.items()}
        catalog = sorted(images)
        requests = []
        for c in claimed:
            state = inputs.states.get(c.session_id)
            view = None
            if state is not None:
                frames = state.frames_seen if c.session_id in inputs.memories else 0
                view = SessionView(state.session_id, state.status, frames, self._fps(state))
            try:
                requests.append(
                    build_request(
                        c,
                        view,
                        labels=self.cfg.activity_labels,
                        product_images=images,
                        catalog=catalog,
                    )
                )
            except InvalidQuery as exc:
                outcomes[c.id] = Invalid(str(exc))
            except NotReadyYet as exc:
                outcomes[c.id] = TryLater(str(exc))
        return requests

    def _fps(self, state: store.SessionState) -> float:
        return state.memory_fps or self.fallback_fps

    def _answer(
        self, requests: list[Request], inputs: _BatchInputs, began: float
    ) -> dict[int, Outcome]:
        order = sorted({r.session.session_id for r in requests})
        index = {sid: i for i, sid in enumerate(order)}
        memory = PreparedMemory.cat([inputs.memories[sid] for sid in order])
        flat = []
        for r in requests:
            i = index[r.session.session_id]
            r.model_queries = [
                type(q)(**{**q.__dict__, "memory_index": i}) for q in r.model_queries
            ]
            flat.extend(r.model_queries)
        with torch.inference_mode():
            predictions = self.net.answer(memory, flat)
        compute_ms = round((time.perf_counter() - began) * 1000, 2)
        outcomes: dict[int, Outcome] = {}
        at = 0
        for r in requests:
            mine = predictions[at : at + len(r.model_queries)]
            at += len(r.model_queries)
            answering = Answering(
                kind=r.claimed.kind,
                window_from=r.start_step / r.session.fps,
                window_to=r.end_step / r.session.fps,
                window_clipped=r.clipped,
                session_open=r.session.status == "open",
                frames_seen=r.session.frames_seen,
                model_version=self.model_version,
                batch_ms=compute_ms,
                batch_size=len(requests),
            )
            answer = build_answer(
                r,
                mine,
                answering,
                fps=r.session.fps,
                labels=self.cfg.activity_labels,
                names=inputs.names,
            )
            outcomes[r.claimed.id] = Answered(answer)
        return outcomes

    def _finish(
        self, claimed: Sequence[queue.ClaimedQuery], outcomes: dict[int, Outcome], began: float
    ) -> None:
        """Answers and failures of the whole batch in one transaction; ``began``: when the
        batch was claimed (``time.perf_counter``)."""
        completions: list[queue.Completion] = []
        failures: list[queue.Failure] = []
        gave_up: set[int] = set()
        for c in claimed:
            outcome = outcomes.get(c.id, TryLater("the worker produced no result"))
            if isinstance(outcome, Answered):
                payload = outcome.answer.to_json()
                completions.append(queue.Completion(c.id, payload, self.model_version))
            elif isinstance(outcome, Invalid):
                failures.append(queue.Failure(c.id, outcome.reason, None))
                gave_up.add(c.id)
            else:
                decision = retry_decision(
                    outcome.reason,
                    c.attempts,
                    self.settings.query_max_attempts,
                    self.settings.query_retry_s,
                )
                failures.append(queue.Failure(c.id, decision.error, decision.after_s))
                if decision.after_s is None:
                    gave_up.add(c.id)
        with self.database.session() as db:
            held = queue.finish(
                db, worker=self.worker_id, completions=completions, failures=failures
            )
        answered = sum(c.query_id in held for c in completions)
        retried = sum(f.query_id in held and f.query_id not in gave_up for f in failures)
        self.stats.answered += answered
        self.stats.failed += len(gave_up & held)
        self.stats.retried += retried
        self.metrics.count_answered(answered, time.perf_counter() - began)
        self.metrics.failures.inc(len(gave_up & held))
        self.metrics.retries.inc(retried)
        lost = sum(c.id not in held for c in claimed)
        self.stats.lost_leases += lost
        self.metrics.lost_leases.inc(lost)
        self._log_results(claimed, completions, failures, gave_up, held)

    def _log_results(
        self,
        claimed: Sequence[queue.ClaimedQuery],
        completions: Sequence[queue.Completion],
        failures: Sequence[queue.Failure],
        gave_up: set[int],
        held: set[int],
    ) -> None:
        """One line per query, carrying its id: what an operator greps for when a checkout
        asks where its answer went."""
        reasons = {f.query_id: f for f in failures}
        answered = {c.query_id for c in completions}
        for q in claimed:
            where = {
                "query_id": q.id,
                "session": q.session_id,
                "kind": q.kind,
                "attempts": q.attempts,
            }
            if q.id not in held:
                log.warning(
                    "query %d: lease lost before finishing; another worker has it",
                    q.id,
                    extra=where,
                )
            elif q.id in answered:
                log.info("query %d answered", q.id, extra=where)
            elif q.id in gave_up:
                log.warning("query %d failed: %s", q.id, reasons[q.id].error, extra=where)
            else:
                f = reasons[q.id]
                log.info(
                    "query %d will be tried again in %g s: %s",
                    q.id,
                    f.retry_after_s,
                    f.error,
                    extra=where,
                )
