"""Reconciliation against a real PostgreSQL: a synthetic session through the real ingest
engine and answer worker (random-weights model), wired by the reconciliation hooks.

The model's verdicts are arbitrary with random weights, so this checks the mechanics: the
row appears once every question round is finished, whatever the model put in the cart and
the till did not scan is flagged, and scans change the outcome deterministically.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import catalog as catalog_ops
from app import db as database_ops
from app.answer import AnswerWorker
from app.answer.payloads import answer_from_json
from app.db import Database
from app.ingest import FileSource, IngestEngine
from app.model_runtime import load_model
from app.reconcile import (
    ORIGIN,
    DiscrepancyKind,
    add_scan,
    answer_batch_hook,
    reconcile_now,
    session_closed_hook,
)
from app.reconcile.questions import Question, needed_questions, session_question
from app.settings import Settings
from storage import Answer, QueryStatus, Reconciliation, SessionMemory
from storage import query_queue as queue
from storage.answering import memory_arrays
from storage.reconciliations import session_queries

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SESSION = "shop-1"
CANDIDATES = ["SKU-0001", "SKU-0002", "SKU-0003", "SKU-0004", "SKU-0005", "SKU-0006"]


@dataclasses.dataclass(frozen=True)
class Shop:
    database: Database
    basket: dict[str, int]  # the annotation's true basket
    scans: dict[str, int]  # what the till scans: the basket but one planted product


@pytest.fixture
def shop(pg_settings: Settings, tiny_checkpoint: Path, synth_videos: list[Path]) -> Iterator[Shop]:
    """One synthetic session ingested with the reconciliation hook; the catalog loaded."""
    yield from _open_shop(pg_settings, tiny_checkpoint, synth_videos)


@pytest.fixture
def pair_shop(
    pg_settings: Settings, tiny_pair_checkpoint: Path, synth_videos: list[Path]
) -> Iterator[Shop]:
    """The same, served by a model pair (``model.pair``) and read as a whole trip (the
    served default, ``cart``)."""
    yield from _open_shop(pg_settings, tiny_pair_checkpoint, synth_videos, evidence="cart")


def _open_shop(
    pg_settings: Settings, checkpoint: Path, synth_videos: list[Path], evidence: str = "windows"
) -> Iterator[Shop]:
    settings = dataclasses.replace(
        pg_settings, checkpoint_path=str(checkpoint), device="cpu", query_poll_s=0.2
    )
    database_ops.upgrade(settings)
    database = Database(settings)
    root = synth_videos[0].parents[1]
    for png in sorted((root / "catalog").glob("*.png")):
        catalog_ops.add_product(database, png.stem, name=png.stem, image_path=png)
    annotation = json.loads((root / "annotations" / f"{synth_videos[0].stem}.json").read_text())
    basket = dict(sorted(annotation["basket"].items()))
    source = FileSource(
        [(synth_videos[0], SESSION)],
        chunk_seconds=3.0,
        start_info={"candidate_skus": sorted(set(CANDIDATES) | set(basket))},
    )
    IngestEngine(
        settings,
        database,
        load_model(settings),
        source,
        on_session_closed=session_closed_hook(database, evidence=evidence),
    ).run(until_idle_s=0.3)
    yield Shop(database, basket, dict(list(basket.items())[1:]))
    database.dispose()


def test_the_answer_worker_completes_the_reconciliation(shop: Shop) -> None:
    database = shop.database
    with database.session() as db:
        first = [q for q, _ in session_queries(db, SESSION, origin=ORIGIN)]
    assert {q.params["sku"] for q in first} == set(CANDIDATES) | set(shop.basket)
    for sku, qty in shop.scans.items():
        add_scan(database, SESSION, sku, qty=qty)

    worker = AnswerWorker(
        database.settings,
        database,
        load_model(database.settings),
        after_batch=answer_batch_hook(database),
    )
    worker.run(until_idle_s=1.0)

    with database.session() as db:
        rows = session_queries(db, SESSION, origin=ORIGIN)
        assert {q.status for q, _ in rows} == {QueryStatus.DONE.value}
        assert db.query(Reconciliation).filter_by(session_id=SESSION).count() == 1
        # exactly the questions the answers called for were asked, each once
        answers = {Question.of(q.kind, q.params): answer_from_json(a.payload) for q, a in rows if a}
        duration = next(float(q.params["to"]) for q in first)
        skus = [q.sku for q in answers if q == session_question(q.sku, duration)]
        assert len(rows) == len(answers)
        assert set(answers) == set(needed_questions(skus, duration, answers))

    report = reconcile_now(database, SESSION)
    assert report.state == "done" and report.questions.waiting == 0
    under = {d.sku for d in report.discrepancies if d.expected > d.scanned}
    assert under == {b.sku for b in report.expected if b.qty > shop.scans.get(b.sku, 0)}
    planted = next(iter(shop.basket), None)
    if planted in {b.sku for b in report.expected}:  # the model says it went in: flagged
        (flag,) = [d for d in report.discrepancies if d.sku == planted]
        assert flag.kind is DiscrepancyKind.NOT_SCANNED

    # the till scans exactly the expected basket, plus one more of the least likely product
    expected = {b.sku: b.qty for b in report.expected}
    for sku, qty in expected.items():
        if qty > shop.scans.get(sku, 0):
            add_scan(database, SESSION, sku, qty=qty - shop.scans.get(sku, 0))
    extra = min(sorted(set(CANDIDATES) - set(shop.scans)), key=lambda s: expected.get(s, 0))
    add_scan(database, SESSION, extra, qty=expected.get(extra, 0) + 1)
    again = reconcile_now(database, SESSION, recompute=True)
    over = [d for d in again.discrepancies if d.scanned > d.expected]
    assert [d for d in again.discrepancies if d.expected > d.scanned] == []
    assert [(d.sku, d.kind) for d in over if d.sku == extra] == [
        (
            extra,
            DiscrepancyKind.QUANTITY if extra in expected else DiscrepancyKind.SCANNED_NOT_TAKEN,
        )
    ]
    same = reconcile_now(database, SESSION, recompute=True)
    assert same.discrepancies == again.discrepancies and same.expected == again.expected


def test_a_model_pair_keeps_two_memories_and_names_the_trip_with_both(pair_shop: Shop) -> None:
    database = pair_shop.database
    for sku, qty in pair_shop.scans.items():
        add_scan(database, SESSION, sku, qty=qty)
    loaded = load_model(database.settings)
    assert loaded.version.startswith("tiny-pair@")
    with database.session() as db:
        memory = db.get(SessionMemory, SESSION)
        assert memory is not None and memory.model_version == loaded.version
        (valid,) = [b for b in memory_arrays(db, [SESSION])[SESSION] if b.name == "valid"]
    slots = valid.shape[-1]
    assert slots == loaded.net.cfg.memory_size == 256 + 128  # the lead's, then the partner's

    AnswerWorker(database.settings, database, loaded, after_batch=answer_batch_hook(database)).run(
        until_idle_s=1.0
    )
    with database.session() as db:
        rows = session_queries(db, SESSION, origin=ORIGIN)
        assert rows and {q.status for q, _ in rows} == {QueryStatus.DONE.value}
        steps = [a.payload["steps"] for _, a in rows if a is not None and "steps" in a.payload]
        assert db.query(Reconciliation).filter_by(session_id=SESSION).count() == 1
    assert steps, "reconciliation asks whole-session per-step questions"
    for answer in steps:  # every per-step answer carries both models' naming, step by step
        labels = [k for k in answer if k not in ("fps", "naming")]
        assert sorted(answer["naming"]) == sorted(labels)
        assert all(len(answer["naming"][k]) == len(answer[k]) for k in labels)
    report = reconcile_now(database, SESSION)
    assert report.state == "done" and report.model_version == loaded.version

    # a "which product" question is ranked by both models as well
    with database.session() as db:
        asked = queue.enqueue(
            db,
            session_id=SESSION,
            kind="activity",
            params={"activity": "put_in_cart", "from": 0.0, "to": 8.0},
        )
    AnswerWorker(database.settings, database, loaded).run(until_idle_s=0.5)
    with database.session() as db:
        answer = db.query(Answer).filter_by(query_id=asked).one()
    ranked = answer.payload["products"]
    assert len(ranked) == 5 and answer.model_version == loaded.version
    assert [p["score"] for p in ranked] == sorted((p["score"] for p in ranked), reverse=True)
