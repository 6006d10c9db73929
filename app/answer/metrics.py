"""Prometheus metrics of a query worker, on a registry of its own."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.db import Database
from storage import query_queue as queue

#: seconds; a batch on a CPU takes about a second, on a GPU tens of milliseconds
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: the answers-per-second gauge averages over at least this long
_RATE_WINDOW_S = 10.0


class AnswerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge(
            "cartmem_answer_queue_depth", "Queries in the queue by status", ["status"], registry=r
        )
        self.queries_due = Gauge(
            "cartmem_answer_queries_due",
            "Queries a worker may claim now (pending and due, or past their lease)",
            registry=r,
        )
        self.claim_to_answer = Histogram(
            "cartmem_answer_claim_to_answer_seconds",
            "From claiming a query to storing its answer",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.answered = Counter("cartmem_answer_answered", "Queries answered", registry=r)
        self.answers_per_second = Gauge(
            "cartmem_answer_answers_per_second",
            f"Queries answered per second over the last {_RATE_WINDOW_S:g} s or more",
            registry=r,
        )
        self.retries = Counter(
            "cartmem_answer_retries", "Queries given back to be tried again later", registry=r
        )
        self.failures = Counter(
            "cartmem_answer_failures",
            "Queries failed for good (invalid, or out of attempts)",
            registry=r,
        )
        self.lost_leases = Counter(
            "cartmem_answer_lost_leases",
            "Queries whose lease ran out before their result was stored",
            registry=r,
        )
        self.batches = Counter("cartmem_answer_batches", "Batches claimed and handled", registry=r)
        self.memories_cached = Gauge(
            "cartmem_answer_memories_cached", "Session memories held on the device", registry=r
        )
        self.memory_loads = Counter(
            "cartmem_answer_memory_loads",
            "Memories read from the database (not cached, or saved anew by ingest)",
            registry=r,
        )
        self.last_due = 0  # as of the latest read_queue: what readiness calls waiting work
        self._window_start = time.monotonic()
        self._window_answers = 0

    def count_answered(self, n: int, claim_to_answer_s: float) -> None:
        self.answered.inc(n)
        for _ in range(n):
            self.claim_to_answer.observe(claim_to_answer_s)
        self._window_answers += n

    def roll_rate(self) -> None:
        """Set answers per second once the window is long enough (the worker calls this
        every round, busy or idle, so the rate falls to 0 when nothing is asked)."""
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed >= _RATE_WINDOW_S:
            self.answers_per_second.set(self._window_answers / elapsed)
            self._window_start, self._window_answers = now, 0

    def read_queue(self, database: Database) -> int:
        """Set the queue's gauges from the database; returns how many queries are due.

        Run by the health prober's thread every few seconds, never by the worker: the counts
        cost a query that answering should not wait on.
        """
        with database.session() as db:
            depth = queue.queue_depth(db)
        for status, n in depth.by_status.items():
            self.queue_depth.labels(status).set(n)
        self.queries_due.set(depth.due)
        self.last_due = depth.due
        return depth.due
