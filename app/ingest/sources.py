"""Where records come from: a Kafka consumer group, or video files read in process.

Both give the engine the same few operations, so one engine serves production (Kafka) and
the embedded default and demo (files, no broker). The engine learns about partitions it
gains or loses through the callbacks it registers with ``bind``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import CorruptRecordError, KafkaError

from app.errors import BrokerUnavailableError
from app.ingest.records import Record, record_of
from app.ingest.records import TopicPartition as TP
from app.ingest.unreadable import unreadable_records
from app.kafka_client import make_consumer
from app.publish import session_messages
from app.settings import Settings

PartitionsCallback = Callable[[set[TP]], None]
_ASK_TIMEOUT_MS = 5000  # how long one question to the broker (offsets, a commit) may wait


class Source(Protocol):
    group: str

    def bind(self, on_assigned: PartitionsCallback, on_revoked: PartitionsCallback) -> None: ...
    def poll(self, timeout_s: float, max_records: int) -> list[Record]: ...
    def seek(self, tp: TP, offset: int) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def lag(self) -> int: ...
    def lags(self) -> dict[TP, int]: ...
    def caught_up(self) -> bool: ...
    def commit(self, offsets: dict[TP, int]) -> None: ...
    def close(self) -> None: ...


class KafkaSource:
    """A member of the consumer group ``settings.group`` on ``settings.topic``.

    Offsets that matter are the ones the engine stores in the database with its state;
    ``commit`` only mirrors them into Kafka so that standard tools show the group's lag.
    """

    def __init__(self, settings: Settings, **consumer_options: object) -> None:
        self.group = settings.group
        self._topic = settings.topic
        self._consumer: KafkaConsumer = make_consumer(settings, **consumer_options)
        self._on_assigned: PartitionsCallback = lambda _tps: None
        self._on_revoked: PartitionsCallback = lambda _tps: None
        # False from subscribing, and from each revoke, until the group hands this member its
        # partitions (possibly none): while a join is under way, no assignment is no answer
        self.settled = False

    def bind(self, on_assigned: PartitionsCallback, on_revoked: PartitionsCallback) -> None:
        self._on_assigned, self._on_revoked = on_assigned, on_revoked
        self._consumer.subscribe([self._topic], listener=_Listener(self))

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except CorruptRecordError as exc:  # one bad record must not stop the partition
            return unreadable_records(self._consumer, exc)
        return [
            record_of(m)
            for tp in sorted(batches, key=lambda t: (t.topic, t.partition))
            for m in batches[tp]
        ]

    def seek(self, tp: TP, offset: int) -> None:
        self._consumer.seek(TopicPartition(*tp), offset)

    def seek_to_beginning(self, tp: TP) -> None:
        self._consumer.seek_to_beginning(TopicPartition(*tp))

    def first_offset(self, tp: TP) -> int:
        """The oldest offset the partition still holds (retention deletes the ones before)."""
        partition = TopicPartition(*tp)
        return int(self._consumer.beginning_offsets([partition])[partition])

    def pause(self) -> None:
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        self._consumer.resume(*self._consumer.paused())

    def lag(self) -> int:
        return sum(self.lags().values())

    def lags(self) -> dict[TP, int]:
        """Records between the fetch position and the end of each assigned partition."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        ends = self._consumer.end_offsets(assigned, timeout_ms=_ASK_TIMEOUT_MS)
        return {
            (tp.topic, tp.partition): max(0, ends[tp] - self._consumer.position(tp))
            for tp in assigned
        }

    def caught_up(self) -> bool:
        """True when every assigned partition has been fetched to its end, as the broker
        says now; raises :class:`BrokerUnavailableError` when the broker cannot say.

        A member still joining the group (a rebalance under way, another member slow to
        rejoin) holds nothing yet but is not caught up: the partitions may be on their way.
        """
        assigned = list(self._consumer.assignment())
        try:
            if not assigned:  # nothing of ours, if the broker answers at all
                self._consumer.topics()
                return self.settled
            ends = self._consumer.end_offsets(assigned, timeout_ms=_ASK_TIMEOUT_MS)
            return all(
                self._consumer.position(tp, timeout_ms=_ASK_TIMEOUT_MS) >= ends[tp]
                for tp in assigned
            )
        except KafkaError as exc:
            raise BrokerUnavailableError(
                f"the Kafka broker did not answer ({type(exc).__name__}); "
                "records may still be waiting."
            ) from None

    def commit(self, offsets: dict[TP, int]) -> None:
        owned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        mine = {
            TopicPartition(*tp): OffsetAndMetadata(o, "", -1)
            for tp, o in offsets.items()
            if tp in owned
        }
        if mine:  # a mirror for tools: never worth waiting long for
            self._consumer.commit(mine, timeout_ms=_ASK_TIMEOUT_MS)

    def close(self) -> None:
        self._consumer.close(autocommit=False, timeout_ms=_ASK_TIMEOUT_MS)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, source: KafkaSource) -> None:
        self._source = source

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._source.settled = False
        self._source._on_revoked({(tp.topic, tp.partition) for tp in revoked})

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        tps = {(tp.topic, tp.partition) for tp in assigned}
        self._source._on_assigned(tps)
        self._source.settled = True
        # partitions with no stored offset start at the beginning (auto_offset_reset=earliest)

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        # lost, not revoked: another member may already own them, so nothing is committed
        self._source.settled = False
        self._source._on_revoked({(tp.topic, tp.partition) for tp in lost})


class FileSource:
    """Video files published in process as contract-v1 messages on one partition.

    Sessions run concurrently, as carts in a store do: their messages are interleaved in
    turn. Offsets are positions in that sequence, so the engine's commit and replay work
    exactly as with Kafka.
    """

    topic = "files"

    def __init__(
        self,
        sessions: Sequence[tuple[Path, str]],
        *,
        group: str = "files",
        chunk_seconds: float = 4.0,
        start_info: dict[str, object] | None = None,
        start_infos: Mapping[str, dict[str, object]] | None = None,
    ) -> None:
        """``start_info``: the session_start payload of every session; ``start_infos``, by
        session id, one of a session's own (e.g. its store's ``candidate_skus``)."""
        self.group = group
        own = start_infos or {}
        streams = [
            session_messages(
                path,
                session_id,
                chunk_seconds=chunk_seconds,
                start_info=own.get(session_id, start_info),
            )
            for path, session_id in sessions
        ]
        messages = [m for turn in itertools.zip_longest(*streams) for m in turn if m is not None]
        self._records = [
            Record(self.topic, 0, offset, m.key, tuple(m.headers), m.value)
            for offset, m in enumerate(messages)
        ]
        self._position = 0
        self._paused = False
        self._on_assigned: PartitionsCallback = lambda _tps: None

    def bind(self, on_assigned: PartitionsCallback, on_revoked: PartitionsCallback) -> None:
        self._on_assigned = on_assigned
        self._assigned = False

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        if not self._assigned:
            self._assigned = True
            self._on_assigned({(self.topic, 0)})
        if self._paused or self._position >= len(self._records):
            time.sleep(min(timeout_s, 0.05))
            return []
        batch = self._records[self._position : self._position + max_records]
        self._position += len(batch)
        return batch

    def seek(self, tp: TP, offset: int) -> None:
        self._position = offset

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def lag(self) -> int:
        return len(self._records) - self._position

    def lags(self) -> dict[TP, int]:
        return {(self.topic, 0): self.lag()}

    def caught_up(self) -> bool:
        return self._position >= len(self._records)

    def commit(self, offsets: dict[TP, int]) -> None:
        pass  # the database holds the offsets; there is no broker to tell

    def close(self) -> None:
        pass
