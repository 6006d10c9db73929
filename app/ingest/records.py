"""A consumed message as the ingest engine sees it, whatever source it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    value: bytes | None
    # set when the Kafka client could not parse the record: why (it becomes a dead letter)
    unreadable: str | None = None

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)

    @property
    def size(self) -> int:
        return len(self.value or b"")


def record_of(message: Any) -> Record:
    """A record from kafka-python's ``ConsumerRecord`` (duck-typed: this module needs no
    Kafka client)."""
    return Record(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        tuple(message.headers or ()),
        message.value,
    )
