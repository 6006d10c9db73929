"""`cartmem deadletters replay ID`: send a dead-lettered message again once its cause is fixed.

A dead letter keeps only the first bytes of its message (and its SHA-256), so the message
itself is read back from Kafka at its topic, partition and offset while the topic still
retains it. It must be the same message (the hash), and it must pass the contract's checks
under the settings now in force (`app.contract.parse`: a message refused for its size, say,
passes once `CARTMEM_MAX_MESSAGE_BYTES` was raised); then it is produced again with its
key, headers and value, and ingest applies it like any other: a dead-lettered message never
used up its `seq`, so the re-sent one counts, once. The row remembers the replay.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from kafka import TopicPartition

from app import contract
from app.contract import ContractError
from app.db import Database
from app.errors import InvalidInputError, NotFoundError
from app.kafka_client import make_consumer, make_producer
from app.settings import Settings
from storage import dead_letters as store

FETCH_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ReplayReport:
    dead_letter_id: int
    session_id: str | None
    topic: str
    from_offset: int
    to_offset: int


@dataclass(frozen=True)
class _Message:
    key: bytes | None
    headers: list[tuple[str, bytes]]
    value: bytes


def replay_dead_letter(settings: Settings, database: Database, dead_letter_id: int) -> ReplayReport:
    with database.session() as db:
        row = store.get_dead_letter(db, dead_letter_id)
        if row is None:
            raise NotFoundError(
                f"no dead letter {dead_letter_id}; `cartmem deadletters list` shows them."
            )
        if row.replayed_at is not None:
            raise InvalidInputError(
                f"dead letter {dead_letter_id} was replayed at "
                f"{row.replayed_at.isoformat(timespec='seconds')} (to offset "
                f"{row.replayed_offset}); a second replay would be a duplicate."
            )
        topic, partition, offset, sha = row.topic, row.partition, row.offset, row.sha256
    if not settings.uses_kafka:
        raise InvalidInputError(
            "replaying reads the message back from Kafka; set CARTMEM_KAFKA_BOOTSTRAP_SERVERS."
        )
    message = _read_back(settings, topic, partition, offset)
    if hashlib.sha256(message.value).hexdigest() != sha:
        raise InvalidInputError(
            f"the message at {topic}/{partition}@{offset} is not the one dead-lettered "
            "(its SHA-256 differs); nothing was sent."
        )
    try:
        envelope = contract.parse(
            message.key, message.headers, message.value, max_value_bytes=settings.max_message_bytes
        )
    except ContractError as exc:
        raise InvalidInputError(f"the message is still refused: {exc} Nothing was sent.") from None
    producer = make_producer(settings)
    try:
        sent = producer.send(
            topic, key=message.key, value=message.value, headers=message.headers
        ).get(timeout=30)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    with database.session() as db:
        row = store.get_dead_letter(db, dead_letter_id)
        assert row is not None
        store.mark_replayed(db, row, offset=sent.offset)
    return ReplayReport(dead_letter_id, envelope.session_id, topic, offset, sent.offset)


def _read_back(settings: Settings, topic: str, partition: int, offset: int) -> _Message:
    tp = TopicPartition(topic, partition)
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    try:
        consumer.assign([tp])
        first = consumer.beginning_offsets([tp])[tp]
        if offset < first:
            raise InvalidInputError(
                f"Kafka no longer holds {topic}/{partition}@{offset}: the topic's retention "
                f"deleted every offset before {first}. The message cannot be replayed."
            )
        consumer.seek(tp, offset)
        deadline = time.monotonic() + FETCH_TIMEOUT_S
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if record.offset == offset:
                    headers = [(name, value or b"") for name, value in record.headers]
                    return _Message(record.key, headers, record.value or b"")
                if record.offset > offset:
                    break
        raise InvalidInputError(
            f"Kafka did not give back {topic}/{partition}@{offset} within "
            f"{FETCH_TIMEOUT_S:g} s (compacted away, or the broker is slow); nothing was sent."
        )
    finally:
        consumer.close()
