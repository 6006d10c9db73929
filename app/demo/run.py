"""`cartmem demo`: one shopping session through the whole product, on embedded defaults.

A synthetic session is drawn (once; later runs reuse it), ingested by the production engine
from the file source into a demo SQLite database, asked one question of each kind, and
reconciled against a simulated till list that misses one product the shopper kept; the
flag on that product is drawn as staff would check it (``cartmem evidence``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app import catalog as catalog_ops
from app import db as database_ops
from app.answer import AnswerWorker
from app.db import Database
from app.evidence import write_evidence
from app.ingest import FileSource, IngestEngine
from app.model_runtime import load_model
from app.reconcile import add_scan, answer_batch_hook, reconcile_now, session_closed_hook
from app.reconcile.flag_confidence import configured
from app.settings import Settings
from storage import query_queue as queue

Step = Callable[[str], None]


@dataclass
class DemoReport:
    session_id: str
    video: str
    seconds_of_video: float
    model_version: str
    basket_truth: dict[str, int]
    scanned: dict[str, int]
    planted_missing: str
    answers: dict[str, Any] = field(default_factory=dict)
    reconciliation: dict[str, Any] = field(default_factory=dict)
    planted_flagged: bool = False
    timeline_png: str = ""
    evidence_png: str = ""  # the planted product's flag, as staff would check it
    timings_s: dict[str, float] = field(default_factory=dict)


def run_demo(
    settings: Settings, *, minutes: float = 2.0, seed: int = 1, step: Step = lambda _m: None
) -> DemoReport:
    """The whole job on one held-out session of the store drawn with ``seed``.

    The dataset seed fixes the store's catalog. The shipped checkpoint was trained on the
    training stores of a multi-store dataset drawn with seed 0, whose catalogs differ from
    any single store's, so the default store sells products the model never saw, as a
    store does after its weekly change; the session is drawn from the test split.
    """
    from model.synth import SynthConfig, generate_dataset, read_dataset

    home = settings.data_dir / "demo"
    timings: dict[str, float] = {}
    began = time.perf_counter()

    step("drawing a shopping session")
    data = home / f"store-seed{seed}-test-{minutes:g}min"
    if not (data / "dataset.json").is_file():
        shutil.rmtree(data, ignore_errors=True)
        held_out = SynthConfig.held_out()
        generate_dataset(data, videos=1, minutes=minutes, seed=seed, config=held_out)
    dataset = read_dataset(data)
    video = next(iter(dataset.videos.values()))
    timings["synthesize"] = _lap(began)

    step("setting up the demo database")
    db_file = home / "demo.db"
    db_file.unlink(missing_ok=True)  # every run starts clean; the video is what is reused
    demo = dataclasses.replace(
        settings, database_url=f"sqlite:///{db_file}", kafka_bootstrap_servers=""
    )
    database_ops.upgrade(demo)
    database = Database(demo)
    for entry in dataset.catalog:
        price = None if entry.price is None else str(entry.price)
        catalog_ops.add_product(
            database, entry.sku, name=entry.name, image_path=data / entry.image, price=price
        )
    model = load_model(demo)
    session_id = f"demo-{seed}"

    step("ingesting the camera video (the production engine, file source)")
    t = time.perf_counter()
    source = FileSource([(data / video.video, session_id)], chunk_seconds=4.0)
    IngestEngine(
        demo,
        database,
        model,
        source,
        on_session_closed=session_closed_hook(database, evidence=demo.reconcile_evidence),
    ).run(until_idle_s=0.2)
    timings["ingest"] = _lap(t)

    basket = {sku: qty for sku, qty in sorted(video.basket.items()) if qty > 0}
    planted = sorted(basket)[0]
    scanned = {sku: qty for sku, qty in basket.items() if sku != planted}
    for sku, qty in scanned.items():
        add_scan(database, session_id, sku, qty=qty)

    step("asking one question of each kind")
    put = next(s for s in video.spans if s.sku == planted and s.activity == "put_in_cart")
    questions = {
        "activity": {"sku": planted, "from": 0.0, "to": video.duration},
        "which_product": {
            "activity": "put_in_cart",
            "from": max(0.0, put.start - 5),
            "to": put.end + 5,
        },
        "object": {"activity": "put_in_cart", "from": put.start, "to": put.end},
        "time": {"activity": "put_in_cart", "sku": planted, "from": 0.0, "to": video.duration},
    }
    with database.session() as db:
        ids = {
            name: queue.enqueue(
                db,
                session_id=session_id,
                kind="activity" if name == "which_product" else name,
                params=p,
            )
            for name, p in questions.items()
        }

    step("answering from memory and reconciling against the till")
    t = time.perf_counter()
    AnswerWorker(
        demo,
        database,
        model,
        after_batch=answer_batch_hook(
            database,
            min_confidence=demo.reconcile_min_confidence,
            calibration=configured(demo.flag_calibration),
        ),
    ).run(until_idle_s=0.2)
    timings["answer_and_reconcile"] = _lap(t)
    answers = {}
    with database.session() as db:
        for name, query_id in ids.items():
            found = queue.get_query(db, query_id)
            assert found is not None  # enqueued above, in this database
            row, answer = found
            answers[name] = {
                "params": questions[name],
                "status": row.status,
                "answer": answer.payload if answer else None,
                "error": row.error,
            }
    report = reconcile_now(
        database,
        session_id,
        min_confidence=demo.reconcile_min_confidence,
        calibration=configured(demo.flag_calibration),
    ).to_json()
    flagged = any(
        d["sku"] == planted and d["kind"] == "not_scanned" for d in report["discrepancies"]
    )
    step("drawing the evidence of the planted flag")
    shutil.rmtree(home / "evidence", ignore_errors=True)  # only this run's picture
    evidence = write_evidence(database, session_id, home / "evidence", skus=[planted])
    database.dispose()

    out = DemoReport(
        session_id=session_id,
        video=str(data / video.video),
        seconds_of_video=video.duration,
        model_version=model.version,
        basket_truth=basket,
        scanned=scanned,
        planted_missing=planted,
        answers=answers,
        reconciliation=report,
        planted_flagged=flagged,
        evidence_png=evidence[0].path if evidence else "",
    )
    step("drawing the timeline")
    from app.demo.timeline import draw_timeline

    out.timeline_png = str(
        draw_timeline(home / "timeline.png", report, video.spans, video.duration)
    )
    timings["total"] = _lap(began)
    out.timings_s = timings
    (home / "report.json").write_text(
        json.dumps(dataclasses.asdict(out), indent=2, default=str) + "\n"
    )
    return out


def _lap(since: float) -> float:
    return round(time.perf_counter() - since, 2)
