"""kafka-python and an independent client (kcat) against a real broker, read by our code."""

import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from app import contract
from app.contract import MessageType
from app.errors import BrokerUnavailableError
from app.kafka_client import make_consumer, make_producer
from app.settings import Settings

pytestmark = pytest.mark.kafka


def _settings(bootstrap: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path, kafka_bootstrap_servers=bootstrap, group=f"g-{uuid.uuid4().hex[:8]}"
    )


def _drain(consumer: KafkaConsumer, expected: int, timeout_s: float = 30.0) -> list:
    records: list = []
    deadline = time.monotonic() + timeout_s
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def _session_messages() -> list[tuple[list[tuple[str, bytes]], bytes]]:
    start = contract.control_value({"store_id": "store-1", "candidate_skus": ["A", "B"]})
    return [
        (contract.headers_for(MessageType.SESSION_START, seq=0, camera="cam-1"), start),
        (
            contract.headers_for(
                MessageType.CHUNK, seq=1, camera="cam-1", t0=0.0, content_type="video/mp2t"
            ),
            bytes(range(256)) * 40,
        ),
        (contract.headers_for(MessageType.SESSION_END, seq=2, camera="cam-1"), b"{}"),
    ]


def test_produce_and_consume_with_headers(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    producer = make_producer(settings)
    for headers, value in _session_messages():
        producer.send(topic, key=b"sess-1", value=value, headers=headers)
    producer.flush(timeout=30)
    producer.close()

    consumer = make_consumer(settings, topic)
    try:
        records = _drain(consumer, 3)
    finally:
        consumer.close()
    parsed = [
        contract.parse(r.key, r.headers, r.value, max_value_bytes=settings.max_message_bytes)
        for r in records
    ]
    assert [(e.type, e.seq) for e in parsed] == [
        (MessageType.SESSION_START, 0),
        (MessageType.CHUNK, 1),
        (MessageType.SESSION_END, 2),
    ]
    assert parsed[0].control["candidate_skus"] == ["A", "B"]
    assert parsed[1].value == bytes(range(256)) * 40 and parsed[1].t0 == 0.0
    assert {r.partition for r in records} == {records[0].partition}  # one key, one partition


def test_messages_from_kcat_are_read_by_our_consumer(
    kafka_bootstrap: str, kcat_produce, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    topic = f"kcat-{uuid.uuid4().hex[:8]}"
    kcat_produce(kafka_bootstrap, topic, "sess-kcat", _session_messages(), tmp_path)
    consumer = make_consumer(settings, topic)
    try:
        records = _drain(consumer, 3)
    finally:
        consumer.close()
    parsed = [
        contract.parse(r.key, r.headers, r.value, max_value_bytes=settings.max_message_bytes)
        for r in records
    ]
    assert [(e.session_id, e.type, e.seq) for e in parsed] == [
        ("sess-kcat", MessageType.SESSION_START, 0),
        ("sess-kcat", MessageType.CHUNK, 1),
        ("sess-kcat", MessageType.SESSION_END, 2),
    ]
    assert parsed[1].value == bytes(range(256)) * 40
    assert parsed[1].content_type == "video/mp2t"


def test_an_unreachable_broker_is_one_sentence_naming_the_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    with pytest.raises(BrokerUnavailableError) as info:
        make_producer(settings, bootstrap_timeout_ms=2000)
    assert "CARTMEM_KAFKA_BOOTSTRAP_SERVERS" in str(info.value)
    assert "127.0.0.1:1" in str(info.value)
