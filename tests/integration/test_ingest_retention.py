"""Kafka's retention outran ingest: the offset a worker stored is gone from the topic. The
worker says so in one sentence, records the loss on the open sessions of the partition, and
reads on from the oldest offset left, never silently (real broker, topic with tiny retention)."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from app import db as database_ops
from app.db import Database
from app.ingest import IngestEngine, KafkaSource
from app.model_runtime import load_model
from app.publish import session_messages
from app.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def settings(pg_settings: Settings, kafka_bootstrap: str, tiny_checkpoint: Path) -> Settings:
    topic = f"short-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    # segments roll after 0.5 s and go 1 s after their last message (the test broker checks
    # retention every second)
    config = {"retention.ms": "1000", "segment.ms": "500", "file.delete.delay.ms": "0"}
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs=config)])
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


def first_offset(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    tp = TopicPartition(settings.topic, 0)
    try:
        return int(consumer.beginning_offsets([tp])[tp])
    finally:
        consumer.close()


def ingest(settings: Settings):
    database = Database(settings)
    try:
        engine = IngestEngine(settings, database, load_model(settings), KafkaSource(settings))
        return engine.run(until_idle_s=3.0)
    finally:
        database.dispose()


def test_offsets_deleted_by_retention_are_said_recorded_and_passed(
    settings: Settings, synth_videos, stored_memory, caplog: pytest.LogCaptureFixture
) -> None:
    messages = list(session_messages(synth_videos[0], "outrun", chunk_seconds=3.0))
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)

    def send(part: list) -> None:
        for m in part:
            producer.send(settings.topic, key=m.key, value=m.value, headers=m.headers)
        producer.flush()

    send(messages[:3])  # session_start and two chunks: read and committed at offset 3
    ingest(settings)
    send(messages[3:6])  # three chunks the worker will never see
    time.sleep(1.5)
    send(messages[6:-1])  # more chunks, in a new segment: the old one may go now
    deadline = time.monotonic() + 60
    while first_offset(settings) < 6 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert first_offset(settings) >= 6, "retention did not delete the old segment in time"

    said: list[str] = []
    with caplog.at_level(logging.ERROR, logger="cartmem.ingest"):
        for _ in range(3):  # a group join that finds no partition metadata yet gets nothing
            ingest(settings)
            said = [r.getMessage() for r in caplog.records if "retention deleted" in r.getMessage()]
            if said:
                break
    (sentence,) = said
    assert re.search(r"offsets 3 to \d+ of .* lost\. Reading on from offset \d+", sentence)
    assert sentence.endswith("open sessions marked: outrun")
    _, snap = stored_memory(settings, "outrun")
    (loss,) = [x for x in snap.losses if "retention" in x["reason"]]
    assert loss["from_offset"] == 3 and loss["to_offset"] >= 6

    send(messages[-1:])  # the session ends: the worker went on and closes it
    ingest(settings)
    _, snap = stored_memory(settings, "outrun")
    assert snap.status == "closed"
    assert [x for x in snap.losses if "retention" in x["reason"]] == [loss]  # recorded once
    producer.close()
