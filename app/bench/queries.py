"""Query answering: throughput and per-query latency against batch size (issue 6).

Session memories are written once (the real model reading a synthetic session) and saved
under several session ids into a temporary SQLite database with the ingest commit
code; the catalog gets the session's products. Then, for each batch size B, the real
``AnswerWorker`` answers pending queries B at a time: every round claims B queries, reads
the sessions and the catalog, answers them in one model call and writes the answers in
one transaction, so the figures include the database round trips a checkout sees.

A query's latency is the wall time of the round that answered it (claim to commit): the
time a checkout waits when the worker is idle and B queries arrive together. Beside each
row, ``LongVMNet.answer`` alone on the same memories and questions shows the model's share.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app import db as database_ops
from app.answer import AnswerWorker
from app.bench.machine import describe_machine
from app.bench.stopwatch import Stopwatch
from app.bench.synthetic import (
    FULL_SESSION,
    QUICK_SESSION,
    Session,
    SessionSpec,
    cached_session,
    model_query,
    session_frames,
)
from app.bench.video_window import decode_window
from app.catalog import add_product
from app.db import Database
from app.ingest.session import LiveSession
from app.model_runtime import LoadedModel, one_network
from app.settings import Settings
from model import LongVMNet, Memory
from model.synth import ActivityQueryRecord, QueryRecord, TimeQueryRecord
from storage import SessionStatus
from storage import query_queue as queue
from storage.ingest_state import commit_ingest_state


@dataclass(frozen=True)
class QueriesPlan:
    session: SessionSpec
    batch_sizes: tuple[int, ...]
    sessions: int  # memories the questions are spread over
    min_queries: int  # timed queries per batch size at least (and 3 rounds at least)


FULL = QueriesPlan(FULL_SESSION, batch_sizes=(1, 4, 16, 64, 256), sessions=8, min_queries=256)
QUICK = QueriesPlan(QUICK_SESSION, batch_sizes=(1, 4, 16), sessions=2, min_queries=16)


@dataclass(frozen=True)
class Throughput:
    queries_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float


@dataclass(frozen=True)
class QueriesRow:
    batch_size: int
    rounds: int
    queries: int
    worker: Throughput  # AnswerWorker.run_once: claim, read, answer, write, commit
    model_only: Throughput  # LongVMNet.answer on the same questions


@dataclass(frozen=True)
class QueriesResult:
    machine: dict[str, Any]
    preset: str
    device: str
    database: str
    sessions: int
    session_minutes: float
    rows: list[QueriesRow]
    benchmark: str = "queries"


def run(
    model: LoadedModel,
    settings: Settings,
    *,
    quick: bool,
    cache: Path,
    log: Callable[[str], None] = lambda _line: None,
) -> QueriesResult:
    plan = QUICK if quick else FULL
    machine = describe_machine()
    model, net = one_network(model)  # a pair: its lead
    fps = settings.memory_fps or net.cfg.fps
    session = cached_session(cache, plan.session, log)
    frames = session_frames(session, fps)
    log(f"queries: writing the {plan.session.minutes:g}-minute session into memory")
    memory = net.populate(decode_window(session.video, 0, frames, fps)[None])
    ids = [f"bench-{i:03d}" for i in range(plan.sessions)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cartmem-bench-") as tmp:
        run_settings = dataclasses.replace(settings, data_dir=Path(tmp), database_url="")
        database_ops.upgrade(run_settings)
        database = Database(run_settings)
        try:
            _store(database, session, memory, ids, model.version, fps)
            for b in plan.batch_sizes:
                rounds = max(3, math.ceil(plan.min_queries / b))
                worker = _worker_figures(model, run_settings, database, session, ids, b, rounds)
                alone = _model_figures(net, memory, session, len(ids), b, rounds, fps)
                rows.append(QueriesRow(b, rounds, b * rounds, worker, alone))
                log(
                    f"queries: batch {b}: {worker.queries_per_second:.1f} queries/s through "
                    f"the worker, p50 {worker.latency_p50_ms:.0f} ms, "
                    f"p99 {worker.latency_p99_ms:.0f} ms"
                )
        finally:
            database.dispose()
    return QueriesResult(
        machine=machine,
        preset=net.cfg.name,
        device=model.device,
        database="sqlite (temporary file)",
        sessions=plan.sessions,
        session_minutes=plan.session.minutes,
        rows=rows,
    )


def _store(
    database: Database,
    session: Session,
    memory: Memory,
    ids: list[str],
    version: str,
    fps: float,
) -> None:
    """The catalog, and the memory under every id, as ingest's checkpoint would save them."""
    for entry in session.dataset.catalog:
        add_product(
            database, entry.sku, name=entry.name, image_path=session.dataset.image_path(entry.sku)
        )
    frames = int(memory.frames_seen[0])
    snapshots = [
        LiveSession(
            sid, fps, status=SessionStatus.CLOSED.value, frames_seen=frames, written=True
        ).snapshot(memory.to_arrays(), version)
        for sid in ids
    ]
    with database.session() as db:
        commit_ingest_state(db, group="cartmem-bench", offsets={}, sessions=snapshots)


def _worker_figures(
    model: LoadedModel,
    settings: Settings,
    database: Database,
    session: Session,
    ids: list[str],
    batch: int,
    rounds: int,
) -> Throughput:
    """Rounds of ``run_once`` claiming ``batch`` queries each; one untimed round first."""
    worker = AnswerWorker(
        dataclasses.replace(settings, query_batch_size=batch), database, model, worker_id="bench"
    )
    with database.session() as db:
        for i in range(batch * (rounds + 1)):
            record = session.questions[i % len(session.questions)]
            queue.enqueue(
                db, session_id=ids[i % len(ids)], kind=record.kind, params=_params(record)
            )
    worker.run_once()  # warm: loads the memories into the worker's device cache
    seconds = []
    for _ in range(rounds):
        began = time.perf_counter()
        claimed = worker.run_once()
        seconds.append(time.perf_counter() - began)
        if claimed != batch:
            raise RuntimeError(f"the worker claimed {claimed} queries, expected {batch}")
    if worker.stats.answered != batch * (rounds + 1):
        raise RuntimeError(f"the worker left queries unanswered: {worker.stats}")
    return _throughput(seconds, batch)


def _model_figures(
    net: LongVMNet,
    memory: Memory,
    session: Session,
    sessions: int,
    batch: int,
    rounds: int,
    fps: float,
) -> Throughput:
    """The same kind of rounds through ``LongVMNet.answer`` alone: no database, no payloads;
    the memories prepared for questions once, as the worker's cache keeps them."""
    memories = net.prepare(Memory.cat([memory] * min(sessions, batch)))
    labels = net.cfg.activity_labels
    seconds = []
    for r in range(rounds + 1):
        queries = []
        for i in range(r * batch, (r + 1) * batch):
            q = model_query(
                session.questions[i % len(session.questions)], session, labels=labels, fps=fps
            )
            queries.append(dataclasses.replace(q, memory_index=i % memories.batch_size))
        watch = Stopwatch(net.device)
        with watch.phase("answer"):
            net.answer(memories, queries)
        if r:  # the first round warms up, as for the worker
            seconds.append(watch.seconds["answer"])
    return _throughput(seconds, batch)


def _params(record: QueryRecord) -> dict[str, Any]:
    """A question as a checkout inserts it: the window in seconds and what it names."""
    params: dict[str, Any] = {"from": record.start, "to": record.end}
    if isinstance(record, ActivityQueryRecord):
        return params | {"sku": record.sku}
    if isinstance(record, TimeQueryRecord):
        return params | {"activity": record.activity, "sku": record.sku}
    return params | {"activity": record.activity}


def _throughput(round_seconds: list[float], batch: int) -> Throughput:
    latencies = np.repeat(np.array(round_seconds) * 1000.0, batch)  # every query waits its round
    return Throughput(
        queries_per_second=round(batch * len(round_seconds) / sum(round_seconds), 2),
        latency_p50_ms=round(float(np.percentile(latencies, 50)), 2),
        latency_p99_ms=round(float(np.percentile(latencies, 99)), 2),
    )


def plot(result: QueriesResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r.batch_size for r in result.rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, style in (("worker", "o-"), ("model_only", "s--")):
        label = "AnswerWorker (with database)" if name == "worker" else "LongVMNet.answer alone"
        figures = [getattr(r, name) for r in result.rows]
        left.plot(x, [f.queries_per_second for f in figures], style, label=label)
        right.plot(x, [f.latency_p50_ms for f in figures], style, label=f"{label}, p50")
        right.plot(x, [f.latency_p99_ms for f in figures], style, alpha=0.5, label=f"{label}, p99")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(b) for b in x])
        ax.set_xlabel("batch size (queries per model call)")
        ax.legend(fontsize=8)
    left.set_ylabel("queries per second")
    right.set_ylabel("per-query latency, ms")
    right.set_yscale("log")
    fig.suptitle(
        f"Answering from memory, {result.preset} preset on {result.device}, "
        f"{result.sessions} sessions of {result.session_minutes:g} min"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
