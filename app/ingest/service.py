"""Wiring an ingest worker from settings: model, database, source, metrics, signals."""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from app.db import Database
from app.errors import SettingsError
from app.health import BrokerProbe, DatabaseProbe, Probe, start_health
from app.ingest.engine import IngestEngine, IngestStats
from app.ingest.metrics import IngestMetrics
from app.ingest.sources import FileSource, KafkaSource, Source
from app.logs import configure_logging
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
    configure_logging(settings)
    database = Database(settings)
    metrics = IngestMetrics()
    probes: list[Probe] = [DatabaseProbe(database)]
    if not videos and settings.uses_kafka:
        probes.append(BrokerProbe(settings.kafka_bootstrap_servers))
    health = start_health(settings, metrics.registry, probes)
    try:
        model = load_model(settings)
    except BaseException:
        health.stop()
        raise
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
    health.watch(progress=lambda: engine.stats.applied, pending=engine.work_waiting)
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
        health.stop()
        database.dispose()
