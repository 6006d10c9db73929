"""Fixtures the integration tests share."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from app import catalog as catalog_ops
from app import db as database_ops
from app.db import Database
from app.ingest import FileSource, IngestEngine, IngestStats, KafkaSource
from app.model_runtime import load_model
from app.settings import Settings


@pytest.fixture
def one_session_settings(
    pg_settings: Settings, tiny_checkpoint: Path, synth_videos: list[Path]
) -> Settings:
    """A PostgreSQL database holding one ingested session ('shop-1') and the catalog."""
    s = dataclasses.replace(
        pg_settings, checkpoint_path=str(tiny_checkpoint), device="cpu", query_poll_s=0.2
    )
    database_ops.upgrade(s)
    database = Database(s)
    source = FileSource([(synth_videos[0], "shop-1")], chunk_seconds=3.0)
    IngestEngine(s, database, load_model(s), source).run(until_idle_s=0.3)
    for png in sorted((synth_videos[0].parents[1] / "catalog").glob("*.png")):
        catalog_ops.add_product(database, png.stem, name=png.stem, image_path=png)
    database.dispose()
    return s


@pytest.fixture
def make_kafka_pg_settings(
    pg_settings: Settings, kafka_bootstrap: str, tiny_checkpoint: Path
) -> Callable[..., Settings]:
    """Factory: a migrated PostgreSQL database, a new one-partition topic (with
    ``topic_configs``) and a new consumer group on the test broker, the tiny model on CPU,
    commits every half second."""

    def make(topic_configs: dict[str, str] | None = None) -> Settings:
        topic = f"topic-{uuid.uuid4().hex[:10]}"
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs=topic_configs or {})])
        admin.close()
        s = dataclasses.replace(
            pg_settings,
            kafka_bootstrap_servers=kafka_bootstrap,
            topic=topic,
            group=f"ingest-{uuid.uuid4().hex[:8]}",
            checkpoint_path=str(tiny_checkpoint),
            device="cpu",
            commit_interval_s=0.5,
        )
        database_ops.upgrade(s)
        return s

    return make


@pytest.fixture
def kafka_pg_settings(make_kafka_pg_settings: Callable[..., Settings]) -> Settings:
    return make_kafka_pg_settings()


def ingest_until_idle(settings: Settings, idle_s: float = 3.0) -> IngestStats:
    """One ingest worker on the settings' topic until ``idle_s`` without a record."""
    database = Database(settings)
    try:
        engine = IngestEngine(settings, database, load_model(settings), KafkaSource(settings))
        return engine.run(until_idle_s=idle_s)
    finally:
        database.dispose()
