"""Health, metrics and logs of the query worker against a real PostgreSQL.

``/readyz`` follows a database server that is stopped and started again (a private server,
so that it can be stopped); ``/metrics`` follows the queue as queries are answered; JSON
log lines carry the query id.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import db as database_ops
from app.answer import AnswerWorker
from app.answer.metrics import AnswerMetrics
from app.db import Database
from app.devstack import PostgresServer
from app.health import HealthServer, Readiness
from app.health.check import ask
from app.model_runtime import load_model
from app.settings import Settings
from storage import query_queue as queue

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, ok: Callable[[], bool], log: Path | None, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ok():
                return
        except OSError:  # the server is not up yet
            pass
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log else ""
    pytest.fail(f"{what} within {timeout_s:g} s\n{tail}")


def samples(body: str, name: str) -> dict[str, float]:
    """``name``'s samples by their label values joined (or '' without labels)."""
    return {
        ",".join(s.labels.values()): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == name
    }


def enqueue(settings: Settings, n: int) -> list[int]:
    database = Database(settings)
    params = {"from": 0.0, "to": 8.0, "sku": "SKU-0001"}
    with database.session() as db:
        ids = [
            queue.enqueue(db, session_id="shop-1", kind="activity", params=params) for _ in range(n)
        ]
    database.dispose()
    return ids


def stop(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def test_readyz_turns_unready_when_the_database_stops_and_ready_when_it_returns(
    tmp_path: Path, tiny_checkpoint: Path, cartmem_process
) -> None:
    server = PostgresServer.start(tmp_path / "pg")
    log = tmp_path / "answer.log"
    try:
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=server.url,
            checkpoint_path=str(tiny_checkpoint),
            device="cpu",
            metrics_port=free_port(),
            query_poll_s=0.2,
        )
        database_ops.upgrade(settings)
        base = f"http://127.0.0.1:{settings.metrics_port}"
        worker = cartmem_process(settings, "answer", log=log)
        try:
            wait_for("ready", lambda: ask(f"{base}/readyz")[0] == 200, log)
            server.stop()
            wait_for(
                "unready without the database", lambda: ask(f"{base}/readyz")[0] == 503, log, 60
            )
            status, body = ask(f"{base}/readyz")
            problems = json.loads(body)["problems"]
            assert status == 503 and any("cannot reach the database" in p for p in problems)
            assert ask(f"{base}/healthz") == (200, "ok\n"), "alive all the same"
            server.start_again()
            wait_for("ready again", lambda: ask(f"{base}/readyz")[0] == 200, log, 60)
        finally:
            stop(worker)
    finally:
        server.stop()


def test_queue_depth_on_metrics_changes_as_a_batch_is_answered(
    one_session_settings: Settings,
) -> None:
    settings = one_session_settings
    database = Database(settings)
    metrics = AnswerMetrics()
    server = HealthServer("127.0.0.1", 0, Readiness(stall_s=60.0), metrics.registry).start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    try:
        worker = AnswerWorker(settings, database, load_model(settings), metrics=metrics)
        ids = enqueue(settings, 6)
        metrics.read_queue(database)  # what the prober does every few seconds
        body = ask(url)[1]
        assert samples(body, "cartmem_answer_queue_depth") == {
            "pending": 6,
            "running": 0,
            "done": 0,
            "failed": 0,
        }
        assert samples(body, "cartmem_answer_queries_due") == {"": 6}
        assert worker.run_once() == len(ids)
        metrics.read_queue(database)
        body = ask(url)[1]
        depth = samples(body, "cartmem_answer_queue_depth")
        assert (depth["pending"], depth["done"]) == (0, 6)
        assert samples(body, "cartmem_answer_answered_total") == {"": 6}
        assert samples(body, "cartmem_answer_claim_to_answer_seconds_count") == {"": 6}
        assert samples(body, "cartmem_answer_memories_cached") == {"": 1}
    finally:
        server.stop()
        database.dispose()


def test_the_answer_worker_serves_metrics_and_json_logs_with_query_ids(
    one_session_settings: Settings, cartmem_process, tmp_path: Path
) -> None:
    settings = dataclasses.replace(
        one_session_settings,
        metrics_port=free_port(),
        log_format="json",
        kafka_sasl_password="hunter2-never-logged",
    )
    url = f"http://127.0.0.1:{settings.metrics_port}"
    log = tmp_path / "answer.log"
    worker = cartmem_process(settings, "answer", log=log)
    try:
        wait_for("ready", lambda: ask(f"{url}/readyz")[0] == 200, log)
        depth = samples(ask(f"{url}/metrics")[1], "cartmem_answer_queue_depth")
        assert (depth["pending"], depth["done"]) == (0, 0)
        ids = enqueue(settings, 5)

        def all_done() -> bool:
            depth = samples(ask(f"{url}/metrics")[1], "cartmem_answer_queue_depth")
            return (depth["pending"], depth["running"], depth["done"]) == (0, 0, 5)

        wait_for("every query done on /metrics", all_done, log, 60)
        body = ask(f"{url}/metrics")[1]
        assert samples(body, "cartmem_answer_answered_total") == {"": 5}
    finally:
        stop(worker)
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    answered = [line for line in lines if line["message"].endswith(" answered")]
    assert sorted(line["query_id"] for line in answered) == sorted(ids)
    assert {line["session"] for line in answered} == {"shop-1"}
    assert "hunter2" not in text
