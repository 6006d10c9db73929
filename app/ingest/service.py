"""Wiring an ingest worker from settings: model, database, source, metrics, signals."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from app.db import Database
from app.errors import SettingsError
from app.ingest.engine import IngestEngine, IngestStats
from app.ingest.metrics import IngestMetrics
from app.ingest.sources import FileSource, KafkaSource, Source
from app.model_runtime import load_model
from app.privacy.housekeeper import start_housekeeper
from app.settings import Settings, env_name


def make_source(settings: Settings, videos: Sequence[Path] = ()) -> Source:
    """Files when given (the embedded default and the demo), else the Kafka group."""
    if videos:
        return FileSource([(path, path.stem) for path in videos])
    if not settings.uses_kafka:
        raise SettingsError(
            f"nothing to ingest: set {env_name('kafka_bootstrap_servers')} to read Kafka, "
            "or pass --video FILE to read files."
        )
    return KafkaSource(settings)


def run_ingest(
    settings: Settings,
    *,
    videos: Sequence[Path] = (),
    max_messages: int | None = None,
    until_idle_s: float | None = None,
    on_session_closed: Callable[[str], None] | None = None,
) -> IngestStats:
    """Run one worker until SIGTERM/SIGINT, ``max_messages`` records or ``until_idle_s`` idle."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    model = load_model(settings)
    database = Database(settings)
    metrics = IngestMetrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    if on_session_closed is None:  # a finished session is reconciled against the till
        from app.reconcile import session_closed_hook

        on_session_closed = session_closed_hook(database, evidence=settings.reconcile_evidence)
    engine = IngestEngine(
        settings,
        database,
        model,
        make_source(settings, videos),
        on_session_closed=on_session_closed,
        metrics=metrics,
    )
    housekeeper = start_housekeeper(database, settings)  # retention (docs/PRIVACY.md)
    previous = {
        s: signal.signal(s, lambda *_: engine.request_stop())
        for s in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return engine.run(max_messages=max_messages, until_idle_s=until_idle_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if housekeeper is not None:
            housekeeper.stop()
        database.dispose()
