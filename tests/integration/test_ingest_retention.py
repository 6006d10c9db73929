"""Kafka's retention outran ingest: the offset a worker stored is gone from the topic. The
worker says so in one sentence, records the loss on the open sessions of the partition, and
reads on from the oldest offset left, never silently (real broker, topic with tiny retention)."""

from __future__ import annotations

import logging
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from app.publish import session_messages
from app.settings import Settings

from .conftest import ingest_until_idle

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def settings(make_kafka_pg_settings) -> Settings:
    # segments roll after 0.5 s and go 1 s after their last message (the test broker checks
    # retention every second)
    return make_kafka_pg_settings(
        {"retention.ms": "1000", "segment.ms": "500", "file.delete.delay.ms": "0"}
    )


def keep_from_now_on(settings: Settings) -> None:
    """The topic's retention back to an hour."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, settings.topic, configs={"retention.ms": "3600000"}
        )
        admin.alter_configs([resource])
    finally:
        admin.close()


def first_offset(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    tp = TopicPartition(settings.topic, 0)
    try:
        return int(consumer.beginning_offsets([tp])[tp])
    finally:
        consumer.close()


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
    ingest_until_idle(settings)
    send(messages[3:6])  # three chunks the worker will never see
    time.sleep(1.5)
    send(messages[6:-1])  # more chunks, in a new segment: the old one may go now
    deadline = time.monotonic() + 60
    while first_offset(settings) < 6 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert first_offset(settings) >= 6, "retention did not delete the old segment in time"
    keep_from_now_on(settings)  # the outage is over: nothing more goes
    gone_before = first_offset(settings)

    said: list[str] = []
    with caplog.at_level(logging.ERROR, logger="cartmem.ingest"):
        for _ in range(3):  # a group join that finds no partition metadata yet gets nothing
            ingest_until_idle(settings, idle_s=10.0)  # long enough for the rejoin after it
            said = [r.getMessage() for r in caplog.records if "retention deleted" in r.getMessage()]
            if said:
                break
    (sentence,) = said
    assert f"offsets 3 to {gone_before - 1} of " in sentence
    assert f"Reading on from offset {gone_before}" in sentence
    assert sentence.endswith("open sessions marked: outrun")
    _, snap = stored_memory(settings, "outrun")
    (loss,) = [x for x in snap.losses if "retention" in x["reason"]]
    assert (loss["from_offset"], loss["to_offset"]) == (3, gone_before)

    send(messages[-1:])  # the session ends: the worker went on and closes it
    ingest_until_idle(settings)
    _, snap = stored_memory(settings, "outrun")
    assert snap.status == "closed"
    assert [x for x in snap.losses if "retention" in x["reason"]] == [loss]  # recorded once
    producer.close()
