"""Records the Kafka client cannot parse, handed to the engine as dead letters.

kafka-python (3.0) parses a fetched record batch record by record. When one record breaks
the wire format as it reads it (a header name that is not UTF-8, which librdkafka-based
producers such as kcat can send), ``poll`` raises ``CorruptRecordError`` and leaves the
partition's half-read batch in place, and the next ``poll`` spins on it for ever: one such
message would stop its partition, and the worker, for good.

Here the half-read batch is dropped, the offsets from the partition's position to the first
one the client can read again are handed out as unreadable records (each becomes a dead
letter with the reason), and the consumer is moved past them. Records of the batch before
the bad one were already delivered; the ones after it cannot be read by this client either,
so they are dead letters too: on record, not lost without a trace.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CorruptRecordError

from app.ingest.records import Record

log = logging.getLogger("cartmem.ingest")

_PROBE_TIMEOUT_MS = 2000
_PROBE_POLLS = 4


def unreadable_records(consumer: KafkaConsumer, error: CorruptRecordError) -> list[Record]:
    """The unreadable offsets at the failing partition's position, as records with
    ``unreadable`` set; the consumer is moved past them."""
    tp = _drop_half_read_batch(consumer)
    if tp is None:  # not the failure this module knows: let the worker say so
        raise error
    start = consumer.position(tp)
    paused_before = set(consumer.paused())
    others = [p for p in consumer.assignment() if p != tp]
    consumer.pause(*others)  # probing must not consume other partitions' records
    try:
        readable = _first_readable(consumer, tp, start)
    finally:
        consumer.resume(*[p for p in others if p not in paused_before])
    consumer.seek(tp, readable)
    reason = (
        f"the Kafka client cannot read this record's batch ({str(error)[:200]}); "
        "a header name that is not UTF-8 does this."
    )
    log.error("%s[%d] offsets %d-%d: %s", tp.topic, tp.partition, start, readable - 1, reason)
    return [
        Record(tp.topic, tp.partition, offset, None, (), None, unreadable=reason)
        for offset in range(start, readable)
    ]


def _first_readable(consumer: KafkaConsumer, tp: TopicPartition, start: int) -> int:
    """The first offset after ``start`` from which the client reads ``tp`` again (or its end)."""
    end = consumer.end_offsets([tp], timeout_ms=_PROBE_TIMEOUT_MS)[tp]
    step, readable = 1, end
    while start + step < end:  # widen until an offset reads, then narrow to the first one
        if _reads_from(consumer, tp, start + step):
            readable = start + step
            break
        step *= 2
    low = start + step // 2  # the last offset known not to read
    while readable - low > 1:
        middle = (low + readable) // 2
        if _reads_from(consumer, tp, middle):
            readable = middle
        else:
            low = middle
    return readable


def _reads_from(consumer: KafkaConsumer, tp: TopicPartition, offset: int) -> bool:
    consumer.seek(tp, offset)
    try:
        for _ in range(_PROBE_POLLS):  # a fetch may take more than one poll to arrive
            if consumer.poll(timeout_ms=_PROBE_TIMEOUT_MS // _PROBE_POLLS, max_records=1):
                return True
    except CorruptRecordError:
        _drop_half_read_batch(consumer)
        return False
    return True


def _drop_half_read_batch(consumer: KafkaConsumer) -> TopicPartition | None:
    """Discard the batch kafka-python failed to parse; return its partition.

    Reaches into the client's fetcher (pinned to kafka-python 3.0 in constraints.txt): its
    public API has no way to drop a half-read batch, and without this ``poll`` never returns.
    """
    fetcher: Any = getattr(consumer, "_fetcher", None)
    part: Any = getattr(fetcher, "_next_partition_records", None)
    if part is None:
        return None
    tp = part.topic_partition
    part.drain()
    fetcher._next_partition_records = None
    fetcher._next_in_line_exception_metadata = None
    return tp
