"""The query worker: claim pending queries, answer a batch in one model call, store answers.

Each round claims up to ``batch`` queries under a lease, checks them, loads the sessions'
memories (device LRU, refreshed when ingest saved a newer one), answers all of them with one
``LongVMNet.answer`` call, then writes every answer and marks it done in one transaction,
only for queries whose lease it still holds. Queries that can never be answered fail at
once with a sentence; others are retried with backoff and fail after ``max_attempts``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
import torch

from app.answer.memory_cache import MemoryCache
from app.answer.payloads import payload
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
from model import Memory
from storage import Product, SessionMemory, ShoppingSession
from storage import query_queue as queue
from storage.checkpoints import load_memory_arrays

log = logging.getLogger("cartmem.answer")


@dataclass
class AnswerStats:
    answered: int = 0
    failed: int = 0
    retried: int = 0
    batches: int = 0
    lost_leases: int = 0


class AnswerWorker:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        model: LoadedModel,
        *,
        worker_id: str | None = None,
        after_batch: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.net = model.net
        self.model_version = model.version
        self.cfg = self.net.cfg  # type: ignore[attr-defined]
        self.fps = settings.memory_fps or self.cfg.fps
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.cache = MemoryCache(settings.answer_cache_sessions, model.device)
        self.after_batch = after_batch or (lambda _ids: None)
        self.stats = AnswerStats()
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
        log.info("claimed %d queries (%s)", len(claimed), self.worker_id)
        began = time.perf_counter()
        outcomes: dict[int, tuple[str, Any]] = {}
        requests = self._requests(claimed, outcomes)
        if requests:
            try:
                self._answer(requests, outcomes, began)
            except Exception as exc:  # a fault in the model or the device: retry later
                log.exception("answering a batch failed")
                for r in requests:
                    outcomes[r.claimed.id] = (
                        "retry",
                        f"answering failed ({type(exc).__name__}: {exc})",
                    )
        self._finish(claimed, outcomes)
        self.stats.batches += 1
        self.after_batch([c.id for c in claimed])
        return len(claimed)

    # ------------------------------------------------------------------ steps
    def _requests(
        self, claimed: list[queue.ClaimedQuery], outcomes: dict[int, tuple[str, Any]]
    ) -> list[Request]:
        session_ids = sorted({c.session_id for c in claimed})
        with self.database.session() as db:
            sessions = {
                s.id: s
                for s in db.scalars(
                    sa.select(ShoppingSession).where(ShoppingSession.id.in_(session_ids))
                )
            }
            memories = {
                m.session_id: m
                for m in db.scalars(
                    sa.select(SessionMemory).where(SessionMemory.session_id.in_(session_ids))
                )
            }
            catalog = self._catalog(db)
        requests = []
        for c in claimed:
            s = sessions.get(c.session_id)
            view = None
            if s is not None:
                m = memories.get(c.session_id)
                view = SessionView(s.id, s.status, m.frames_seen if m else 0)
            try:
                requests.append(
                    build_request(
                        c,
                        view,
                        fps=self.fps,
                        labels=self.cfg.activity_labels,
                        product_images={sku: img for sku, (_sha, img) in self._images.items()},
                        catalog=catalog,
                    )
                )
            except InvalidQuery as exc:
                outcomes[c.id] = ("fail", str(exc))
            except NotReadyYet as exc:
                outcomes[c.id] = ("retry", str(exc))
        return requests

    def _catalog(self, db: Any) -> list[str]:
        """SKUs in the catalog; decoded reference images cached until a product changes."""
        rows = db.execute(sa.select(Product.sku, Product.image_sha256)).all()
        for sku, sha in rows:
            if self._images.get(sku, ("",))[0] != sha:
                png = db.scalar(sa.select(Product.image_png).where(Product.sku == sku))
                self._images[sku] = (sha, decode_product_image(png))
        known = {sku for sku, _ in rows}
        for sku in [s for s in self._images if s not in known]:
            del self._images[sku]
        return sorted(known)

    def _memories(self, session_ids: list[str]) -> Memory:
        """The sessions' latest saved memories, as one batch on the device."""
        with self.database.session() as db:
            saved = dict(
                db.execute(
                    sa.select(SessionMemory.session_id, SessionMemory.updated_at).where(
                        SessionMemory.session_id.in_(session_ids)
                    )
                ).all()
            )
            found = {sid: self.cache.get(sid, saved.get(sid)) for sid in session_ids}
            missing = [sid for sid, memory in found.items() if memory is None]
            if missing:
                for sid, (_row, blobs) in load_memory_arrays(db, missing).items():
                    found[sid] = self.cache.put(sid, saved.get(sid), blobs)
        return Memory.cat([found[sid] for sid in session_ids])

    def _answer(
        self, requests: list[Request], outcomes: dict[int, tuple[str, Any]], began: float
    ) -> None:
        order = sorted({r.session.session_id for r in requests})
        index = {sid: i for i, sid in enumerate(order)}
        memory = self._memories(order)
        flat = []
        for r in requests:
            i = index[r.session.session_id]
            r.model_queries = [
                type(q)(**{**q.__dict__, "memory_index": i}) for q in r.model_queries
            ]
            flat.extend(r.model_queries)
        with torch.inference_mode():
            predictions = self.net.answer(memory, flat)
        names = self._names()
        compute_ms = (time.perf_counter() - began) * 1000
        at = 0
        for r in requests:
            mine = predictions[at : at + len(r.model_queries)]
            at += len(r.model_queries)
            body = payload(r, mine, fps=self.fps, labels=self.cfg.activity_labels, names=names)
            body["model_version"] = self.model_version
            body["batch_ms"] = round(compute_ms, 2)
            body["batch_size"] = len(requests)
            outcomes[r.claimed.id] = ("done", body)

    def _names(self) -> dict[str, str]:
        with self.database.session() as db:
            return dict(db.execute(sa.select(Product.sku, Product.name)).all())

    def _finish(
        self, claimed: list[queue.ClaimedQuery], outcomes: dict[int, tuple[str, Any]]
    ) -> None:
        """Answers and failures of the whole batch in one transaction."""
        with self.database.session() as db:
            for c in claimed:
                kind, value = outcomes.get(c.id, ("retry", "the worker produced no result"))
                if kind == "done":
                    value["queued_ms"] = _queued_ms(db, c.id)
                    ok = queue.complete(
                        db,
                        query_id=c.id,
                        worker=self.worker_id,
                        payload=value,
                        model_version=self.model_version,
                    )
                    self.stats.answered += ok
                elif kind == "fail":
                    ok = queue.fail(
                        db, query_id=c.id, worker=self.worker_id, error=value, retry_after_s=None
                    )
                    self.stats.failed += ok
                else:
                    last = c.attempts >= self.settings.query_max_attempts
                    error = f"gave up after {c.attempts} attempts: {value}" if last else value
                    backoff = None if last else self.settings.query_retry_s * 2 ** (c.attempts - 1)
                    ok = queue.fail(
                        db, query_id=c.id, worker=self.worker_id, error=error, retry_after_s=backoff
                    )
                    if last:
                        self.stats.failed += ok
                    else:
                        self.stats.retried += ok
                if not ok:
                    self.stats.lost_leases += 1
                    log.warning(
                        "query %d: lease lost before finishing; another worker has it", c.id
                    )


def _queued_ms(db: Any, query_id: int) -> float | None:
    from storage import Query

    created = db.scalar(sa.select(Query.created_at).where(Query.id == query_id))
    now = queue.database_now(db)
    if created is None:
        return None
    if created.tzinfo is None and now.tzinfo is not None:
        now = now.replace(tzinfo=None)
    return round((now - created).total_seconds() * 1000, 1)
