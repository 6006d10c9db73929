"""Records fetched but not applied yet, decoded ahead of the engine within a byte budget.

Decoding turns a chunk of a few kilobytes into frames a hundred times larger, and a worker
reading a backlog (a file, a restart, a caught-up partition) fetches far faster than the
model writes. Bounding the queue in records alone let one session's 20-minute backlog hold
every frame of it at once. Here a record is fetched into the queue as it comes (bounded in
records: compressed bytes are small), but handed to the decode pool only while the frames
decoded and not applied yet, plus those the running decodes will give, fit in
``limit_bytes``. The running decodes are estimated from the largest record decoded so far;
before any is known, only as many records as the pool has threads are decoded at once.

The engine applies records in offset order from the head, so decoding in the same order
never makes it wait for a record that was not started.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future

from app.ingest.prepare import Prepared
from app.ingest.records import Record


def decoded_bytes(prepared: Prepared) -> int:
    """Bytes the decoded frames of a prepared record hold (0 for messages without video)."""
    return 0 if prepared.decoded is None else int(prepared.decoded.frames.nbytes)


class ReadAhead:
    """The engine's queue of records in offset order, each decoded once there is room."""

    def __init__(
        self,
        executor: Executor,
        decode: Callable[[Record], Prepared],
        *,
        limit_bytes: int,
        max_records: int,
        threads: int,
    ) -> None:
        self._executor = executor
        self._decode = decode
        self.limit_bytes = limit_bytes
        self.max_records = max_records  # the queue's length at which fetching pauses
        self._threads = threads
        self._queue: deque[tuple[Record, Future[Prepared] | None]] = deque()
        self._largest = 0  # decoded bytes of the largest record seen so far

    def __len__(self) -> int:
        return len(self._queue)

    def __bool__(self) -> bool:
        return bool(self._queue)

    def __iter__(self) -> Iterator[Record]:
        return (record for record, _future in self._queue)

    def add(self, record: Record) -> None:
        self._queue.append((record, None))

    def decode_within_budget(self) -> None:
        """Hand queued records to the decode pool, in order, while their frames fit."""
        held, running, started = self._held()
        for i in range(started, len(self._queue)):
            if i > 0 and not self._room(held, running):
                return
            record, _none = self._queue[i]
            self._queue[i] = (record, self._executor.submit(self._decode, record))
            running += 1

    def head(self) -> tuple[Record, Future[Prepared]]:
        """The oldest record and its decoding (started now if the budget had not let it)."""
        record, future = self._queue[0]
        if future is None:
            future = self._executor.submit(self._decode, record)
            self._queue[0] = (record, future)
        return record, future

    def pop(self) -> Prepared:
        """Take the head off the queue once it is applied; returns its result."""
        _record, future = self._queue.popleft()
        assert future is not None and future.done(), "pop only the applied head"
        prepared = future.result()
        self._largest = max(self._largest, decoded_bytes(prepared))
        return prepared

    def remove(
        self, unwanted: Callable[[Record], bool]
    ) -> list[tuple[Record, Future[Prepared] | None]]:
        """Take out the records ``unwanted`` names, in order, each with its decoding (None:
        not started)."""
        removed = [(r, f) for r, f in self._queue if unwanted(r)]
        self._queue = deque((r, f) for r, f in self._queue if not unwanted(r))
        return removed

    def held_bytes(self) -> int:
        """Decoded bytes in the queue, counting running decodes at the largest record seen."""
        held, running, _started = self._held()
        return held + running * self._largest

    def full(self) -> bool:
        return len(self._queue) >= self.max_records

    def drained(self) -> bool:
        return len(self._queue) <= self.max_records // 4

    def _room(self, held: int, running: int) -> bool:
        if self._largest == 0:  # nothing decoded yet: no estimate, keep the pool busy
            return running < self._threads
        return held + (running + 1) * self._largest <= self.limit_bytes

    def _held(self) -> tuple[int, int, int]:
        """(decoded bytes of finished decodes, decodes running, records started).

        Each finished decode also updates the largest-record estimate, so the budget
        learns from decodes still queued, not only from records the engine applied.
        """
        held = running = started = 0
        for _record, future in self._queue:
            if future is None:
                break
            started += 1
            if future.done():
                result = future.result()
                held += decoded_bytes(result)
                self._largest = max(self._largest, decoded_bytes(result))
            else:
                running += 1
        return held, running, started
