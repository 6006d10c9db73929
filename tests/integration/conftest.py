"""Fixtures the integration tests share."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from app import catalog as catalog_ops
from app import db as database_ops
from app.db import Database
from app.ingest import FileSource, IngestEngine
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
def kafka_pg_settings(
    pg_settings: Settings, kafka_bootstrap: str, tiny_checkpoint: Path
) -> Settings:
    """A migrated PostgreSQL database, a new one-partition topic and a new consumer group on
    the test broker, the tiny model on CPU, commits every half second."""
    topic = f"topic-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
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
