"""The query worker against a real PostgreSQL: exactly once, crash recovery, invalid queries."""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import catalog as catalog_ops
from app.answer import AnswerWorker
from app.db import Database
from app.model_runtime import load_model
from app.settings import Settings
from storage import Answer, Query, SessionMemory
from storage import query_queue as queue

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(one_session_settings: Settings) -> Settings:
    """A PostgreSQL database holding one ingested session ('shop-1') and the catalog."""
    return one_session_settings


def enqueue_many(settings: Settings, n: int) -> list[int]:
    database = Database(settings)
    ids = []
    with database.session() as db:
        for i in range(n):
            kind = ("activity", "object", "time")[i % 3]
            params = {"from": float(i % 10), "to": float(i % 10 + 8)}
            params |= {
                "activity": {"sku": "SKU-0001"},
                "object": {"activity": "put_in_cart"},
                "time": {"activity": "inspect", "sku": "SKU-0002"},
            }[kind]
            ids.append(queue.enqueue(db, session_id="shop-1", kind=kind, params=params))
    database.dispose()
    return ids


def queue_state(settings: Settings) -> tuple[dict[str, int], dict[int, int], set[str]]:
    """(queries per status, answers per query id, workers that answered)."""
    engine = sa.create_engine(settings.database_url)
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(sa.select(Query.status, sa.func.count()).group_by(Query.status)).all()
        )
        answers = dict(
            conn.execute(
                sa.select(Answer.query_id, sa.func.count()).group_by(Answer.query_id)
            ).all()
        )
        workers = {
            w for (w,) in conn.execute(sa.select(Query.leased_by).where(Query.status == "done"))
        }
    engine.dispose()
    return statuses, answers, workers


def test_two_workers_drain_one_queue_answering_each_query_once(
    settings: Settings, cartmem_process, tmp_path: Path
) -> None:
    ids = enqueue_many(settings, 60)
    small = dataclasses.replace(settings, query_batch_size=5)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    workers = [cartmem_process(small, "answer", "--until-idle", "3", log=log) for log in logs]
    for w, log in zip(workers, logs, strict=True):
        assert w.wait(timeout=300) == 0, log.read_text()[-2000:]
    statuses, answers, who = queue_state(settings)
    assert statuses == {"done": len(ids)}
    assert sorted(answers) == sorted(ids) and set(answers.values()) == {1}
    assert len(who) == 2, "both workers should have answered some queries"


def test_a_worker_killed_mid_batch_leaves_its_queries_to_be_answered_once(
    settings: Settings, cartmem_process, tmp_path: Path
) -> None:
    # heavy queries (rank the whole catalog each) so the batch is still running when killed
    database = Database(settings)
    with database.session() as db:
        which = {"activity": "put_in_cart", "from": 0.0, "to": 20.0}
        ids = [
            queue.enqueue(db, session_id="shop-1", kind="activity", params=which) for _ in range(40)
        ]
    database.dispose()
    short_lease = dataclasses.replace(settings, query_lease_s=3.0, query_batch_size=40)
    victim = cartmem_process(short_lease, "answer", log=tmp_path / "victim.log")
    engine = sa.create_engine(settings.database_url)
    deadline = time.monotonic() + 120
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            running = conn.execute(
                sa.select(sa.func.count()).where(Query.status == "running")
            ).scalar()
            if running:
                break
            time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    statuses, answers, _ = queue_state(settings)
    assert statuses.get("running", 0) > 0, f"the kill came too late to catch a batch: {statuses}"
    assert not answers, "the killed worker had already answered"
    survivor = AnswerWorker(short_lease, Database(short_lease), load_model(short_lease))
    stats = survivor.run(until_idle_s=5.0)
    statuses, answers, _ = queue_state(settings)
    assert statuses == {"done": len(ids)} and set(answers.values()) == {1}
    assert stats.answered == len(ids)
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(Query.attempts)).scalars()) == {2}
        payload = conn.execute(sa.select(Answer.payload).limit(1)).scalar()
    engine.dispose()
    assert len(payload["products"]) == 5 and payload["activity"] == "put_in_cart"


INVALID = [
    (
        "nobody",
        "time",
        {"activity": "inspect", "sku": "SKU-0001", "from": 0, "to": 5},
        "session 'nobody' is unknown",
    ),
    (
        "shop-1",
        "time",
        {"activity": "inspect", "sku": "SKU-9999", "from": 0, "to": 5},
        "SKU 'SKU-9999' is not in the catalog",
    ),
    (
        "shop-1",
        "object",
        {"activity": "juggle", "from": 0, "to": 5},
        "activity 'juggle' is unknown",
    ),
    ("shop-1", "object", {"activity": "inspect", "from": 9, "to": 3}, "is empty or reversed"),
    (
        "shop-1",
        "object",
        {"activity": "inspect", "from": 500, "to": 600},
        "the window starts at 500 s but session",
    ),
    ("shop-1", "object", {"activity": "inspect", "from": -4, "to": 3}, "before the session began"),
    ("shop-1", "activity", {"sku": "SKU-0001", "to": 3}, "has no 'from' time"),
]


def test_each_kind_of_invalid_query_fails_with_its_sentence(settings: Settings) -> None:
    database = Database(settings)
    with database.session() as db:
        ids = [queue.enqueue(db, session_id=s, kind=k, params=p) for s, k, p, _ in INVALID]
        good = queue.enqueue(
            db, session_id="shop-1", kind="activity", params={"sku": "SKU-0001", "from": 0, "to": 5}
        )
    stats = AnswerWorker(settings, database, load_model(settings)).run(until_idle_s=0.5)
    with database.session() as db:
        for query_id, (_s, _k, _p, sentence) in zip(ids, INVALID, strict=True):
            row, answer = queue.get_query(db, query_id)
            assert row.status == "failed" and answer is None
            assert sentence in row.error and row.error.endswith(".") and row.attempts == 1
        row, answer = queue.get_query(db, good)
        assert row.status == "done" and set(answer.payload["scores"]) >= {"put_in_cart", "inspect"}
    database.dispose()
    assert (stats.failed, stats.answered) == (len(INVALID), 1)


def test_a_memory_is_answered_at_the_rate_it_was_written_whatever_the_worker_is_set_to(
    settings: Settings,
) -> None:
    database = Database(settings)
    with database.session() as db:
        fps = db.scalar(sa.select(SessionMemory.fps).where(SessionMemory.session_id == "shop-1"))
        window = {"activity": "put_in_cart", "from": 2.0, "to": 9.0}
        query_id = queue.enqueue(db, session_id="shop-1", kind="object", params=window)
    assert fps, "ingest records the rate it wrote the memory at"
    elsewhere = dataclasses.replace(settings, memory_fps=4 * fps)  # e.g. another store's setting
    AnswerWorker(elsewhere, database, load_model(elsewhere)).run(until_idle_s=0.0)
    with database.session() as db:
        found = queue.get_query(db, query_id)
        assert found is not None and found[1] is not None
        body = found[1].payload
    database.dispose()
    assert body["window"] == {"from": 2.0, "to": 9.0}
    times = [box["t"] for box in body["boxes"]]
    assert len(times) == round(7.0 * fps)  # one box per step of the memory, at its own rate
    assert times == pytest.approx([2.0 + i / fps for i in range(len(times))])


def test_a_failed_query_is_requeued_and_answered(
    settings: Settings, synth_videos: list[Path]
) -> None:
    """A question about a product the catalog did not have fails at once; once the product is
    added, `cartmem queries requeue` gives it back and the worker answers it."""
    from click.testing import CliRunner

    from app.cli import main

    database = Database(settings)
    try:
        with database.session() as db:
            params = {"sku": "NEW-1", "from": 0, "to": 8}
            query_id = queue.enqueue(db, session_id="shop-1", kind="activity", params=params)
        worker = AnswerWorker(settings, database, load_model(settings))
        worker.run(until_idle_s=0.0)
        with database.session() as db:
            found = queue.get_query(db, query_id)
            assert found is not None
            assert found[0].status == "failed" and "NEW-1" in (found[0].error or "")
        image = sorted((synth_videos[0].parents[1] / "catalog").glob("*.png"))[0]
        catalog_ops.add_product(database, "NEW-1", name="New product", image_path=image)

        result = CliRunner().invoke(
            main, ["queries", "requeue", "--error", "NEW-1", "--json"], env=settings.to_env()
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"requeued": [query_id]}
        worker.run(until_idle_s=0.0)
        with database.session() as db:
            found = queue.get_query(db, query_id)
            assert found is not None
            query, answer = found
            assert query.status == "done" and query.attempts == 1 and answer is not None
    finally:
        database.dispose()
