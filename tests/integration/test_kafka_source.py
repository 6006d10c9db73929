"""The Kafka source's view of its consumer group, against a real broker."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from app.ingest import KafkaSource
from app.settings import Settings

pytestmark = pytest.mark.kafka


def _two_partition_settings(bootstrap: str, tmp_path: Path) -> Settings:
    topic = f"source-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    return Settings(
        data_dir=tmp_path,
        kafka_bootstrap_servers=bootstrap,
        topic=topic,
        group=f"g-{uuid.uuid4().hex[:8]}",
        kafka_session_timeout_ms=6000,
    )


def _member(settings: Settings, held: list[set]) -> KafkaSource:
    source = KafkaSource(settings)
    source.bind(held.append, lambda _tps: None)
    return source


def _poll_until_settled(sources: list[KafkaSource], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(s.settled for s in sources):
        assert time.monotonic() < deadline, "the group never settled"
        for s in sources:
            s.poll(0.2, 10)


def test_a_member_still_joining_is_not_caught_up(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = _two_partition_settings(kafka_bootstrap, tmp_path)
    first_held: list[set] = []
    first = _member(settings, first_held)
    try:
        assert not first.caught_up()  # subscribed, no answer from the group yet
        _poll_until_settled([first])
        assert first_held[-1] == {(settings.topic, 0), (settings.topic, 1)}
        assert first.caught_up()  # an empty topic, all of it held

        # a second member asks to join while the first, busy, does not poll: the group
        # cannot hand out partitions until the first rejoins, so the second holds nothing
        # and must not take that for having read everything
        second_held: list[set] = []
        second = _member(settings, second_held)
        try:
            busy_until = time.monotonic() + 4.0
            while time.monotonic() < busy_until:
                second.poll(0.2, 10)
                assert not second.caught_up()
            _poll_until_settled([first, second])
            assert len(second_held[-1]) == 1 and len(first_held[-1]) == 1
            assert second.caught_up() and first.caught_up()
        finally:
            second.close()
    finally:
        first.close()
