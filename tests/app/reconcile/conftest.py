"""A reconciliation world on the embedded SQLite: sessions with a memory, a catalog, and an
answer worker stand-in that answers from known activity spans (no model involved)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app import db as database_ops
from app.answer.payloads import ActivityAnswer, Answering, StepScores, TimeAnswer
from app.db import Database
from app.reconcile import answer_batch_hook
from app.settings import Settings
from storage import SessionMemory, ShoppingSession, add_product
from storage import query_queue as queue

LABELS = ("take_from_shelf", "put_in_cart", "inspect", "return_to_shelf", "take_out_of_cart")
SEEN, UNSEEN = 0.9, 0.05


@dataclass(frozen=True)
class Span:
    activity: str
    sku: str
    start: float
    end: float


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once: each test starts from a copy of it."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("migrated"))
    database_ops.upgrade(settings)
    return settings.data_dir / "cartmem.db"


@pytest.fixture
def database(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Database]:
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    shutil.copyfile(migrated_sqlite, settings.data_dir / "cartmem.db")
    database = Database(settings)
    yield database
    database.dispose()


@pytest.fixture
def make_session(database: Database) -> Callable[..., str]:
    """Factory: a session with ``seconds`` of video in its memory (1 memory frame a second)."""

    def make(
        session_id: str,
        *,
        seconds: int = 120,
        status: str = "closed",
        start_info: dict[str, Any] | None = None,
    ) -> str:
        with database.session() as db:
            db.add(ShoppingSession(id=session_id, status=status, start_info=start_info or {}))
            db.flush()
            db.add(
                SessionMemory(
                    session_id=session_id,
                    frames_seen=seconds,
                    model_version="test",
                    fps=1.0,
                )
            )
        return session_id

    return make


@pytest.fixture
def make_catalog(database: Database) -> Callable[..., None]:
    def make(*skus: str) -> None:
        with database.session() as db:
            for sku in skus:
                add_product(db, sku=sku, name=sku.title(), image_png=b"png", image_size=(1, 1))

    return make


def oracle(kind: str, params: dict[str, Any], spans: list[Span]) -> dict[str, Any]:
    """What a perfect model answers, as the worker stores it: activities whose span lies
    whole inside the window."""
    inside = [
        s
        for s in spans
        if s.sku == params["sku"] and params["from"] <= s.start and s.end <= params["to"]
    ]
    answering = Answering(kind, params["from"], params["to"], False, False, int(params["to"]))
    if kind == "activity":
        seen = {s.activity for s in inside}
        scores = {label: SEEN if label in seen else UNSEEN for label in LABELS}
        steps = None
        if params.get("steps"):  # one step a second: SEEN during each span's seconds
            first, last = int(params["from"]), int(params["to"])
            steps = StepScores(
                1.0,
                {
                    label: [
                        SEEN
                        if any(s.activity == label and s.start <= t < s.end for s in inside)
                        else UNSEEN
                        for t in range(first, last)
                    ]
                    for label in LABELS
                },
            )
        return ActivityAnswer(answering, params["sku"], scores, steps).to_json()
    (span,) = [s for s in inside if s.activity == params["activity"]]
    return TimeAnswer(
        answering, params["activity"], params["sku"], span.start, span.end, 0.75
    ).to_json()


@pytest.fixture
def answer_all(database: Database) -> Callable[..., int]:
    """Function: answer every pending query from ``spans`` the way the worker stores answers,
    run the after-batch hook after each batch, until the queue is empty; returns how many.
    Queries whose parameters are in ``fail`` are failed for good instead."""

    def run(
        spans: list[Span],
        *,
        fail: Callable[[dict[str, Any]], bool] = lambda p: False,
        webhook: bool = False,
    ) -> int:
        hook = answer_batch_hook(database, webhook=webhook)
        total = 0
        while True:
            with database.session() as db:
                claimed = queue.claim(db, worker="test", limit=16, lease_s=60)
                for c in claimed:
                    if fail(c.params):
                        queue.fail(db, query_id=c.id, worker="test", error="x", retry_after_s=None)
                    else:
                        payload = oracle(c.kind, c.params, spans)
                        queue.complete(
                            db, query_id=c.id, worker="test", payload=payload, model_version="m1"
                        )
            if not claimed:
                return total
            total += len(claimed)
            hook([c.id for c in claimed])

    return run
