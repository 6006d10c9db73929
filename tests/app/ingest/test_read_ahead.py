"""The read-ahead decodes records in order, within a byte budget, never stalling the head."""

from concurrent.futures import Executor, Future
from typing import Any

import numpy as np

from app.ingest.prepare import Prepared
from app.ingest.read_ahead import ReadAhead
from app.ingest.records import Record
from app.video import DecodedChunk

FRAME = (144, 192, 3)  # one decoded frame: 82,944 bytes
FRAME_BYTES = int(np.prod(FRAME))


class HeldExecutor(Executor):
    """Runs nothing until ``finish`` says so: the test decides which decodes are done."""

    def __init__(self) -> None:
        self.started: list[tuple[Future[Any], Any, tuple[Any, ...]]] = []

    # looser than Executor's generic signature, which a test double need not repeat
    def submit(self, fn, /, *args, **kwargs) -> Future[Any]:  # type: ignore[override]
        future: Future[Any] = Future()
        self.started.append((future, fn, args))
        return future

    def finish(self, count: int | None = None) -> None:
        for future, fn, args in [s for s in self.started if not s[0].done()][:count]:
            future.set_result(fn(*args))


def record(offset: int, partition: int = 0) -> Record:
    return Record("video", partition, offset, b"s", (), b"chunk")


def decode_frames(frames: int):
    def decode(rec: Record) -> Prepared:
        chunk = DecodedChunk(np.zeros((frames, *FRAME), np.uint8), np.zeros(frames), 100_000)
        return Prepared(rec, decoded=chunk)

    return decode


def read_ahead(executor: Executor, *, frames: int = 5, limit_frames: int = 20) -> ReadAhead:
    return ReadAhead(
        executor,
        decode_frames(frames),
        limit_bytes=limit_frames * FRAME_BYTES,
        max_records=8,
        threads=2,
    )


def test_before_any_decode_is_known_only_as_many_as_the_pool_has_threads_start() -> None:
    pool = HeldExecutor()
    queue = read_ahead(pool)
    for i in range(8):
        queue.add(record(i))
    queue.decode_within_budget()
    assert len(pool.started) == 2
    assert [a[0].offset for _f, _fn, a in pool.started] == [0, 1]  # in offset order


def test_decoding_stays_within_the_byte_budget_once_a_record_size_is_known() -> None:
    pool = HeldExecutor()
    queue = read_ahead(pool, frames=5, limit_frames=20)  # room for 4 records of 5 frames
    for i in range(8):
        queue.add(record(i))
    queue.decode_within_budget()
    pool.finish()  # records 0 and 1 decoded: 10 frames held, 5 per record known
    queue.decode_within_budget()
    assert len(pool.started) == 4  # 2 done + 2 running estimated = 20 frames
    assert queue.held_bytes() == 20 * FRAME_BYTES
    queue.decode_within_budget()
    assert len(pool.started) == 4  # no room: nothing more starts

    _rec, future = queue.head()
    assert future.done()
    queue.pop()  # record 0 applied: room for one more
    queue.decode_within_budget()
    assert len(pool.started) == 5
    assert queue.held_bytes() <= queue.limit_bytes


def test_the_head_is_decoded_even_when_the_budget_is_spent() -> None:
    pool = HeldExecutor()
    queue = read_ahead(pool, frames=50, limit_frames=20)  # one record exceeds the budget
    for i in range(3):
        queue.add(record(i))
    queue.decode_within_budget()
    pool.finish()  # records 0 and 1: 100 frames held, five times the budget
    queue.decode_within_budget()
    assert len(pool.started) == 2  # record 2 waits
    queue.head()
    queue.pop()
    queue.decode_within_budget()
    assert len(pool.started) == 2  # record 1 still holds more than the budget
    queue.head()
    queue.pop()
    _rec, future = queue.head()  # record 2 is the head now: it must not wait for room
    pool.finish()
    assert len(pool.started) == 3 and future.result().record.offset == 2


def test_removing_a_partition_hands_back_its_records_in_order_with_their_decodings() -> None:
    pool = HeldExecutor()
    queue = read_ahead(pool)
    for i in range(6):
        queue.add(record(i, partition=i % 2))
    queue.decode_within_budget()  # records 0 (partition 0) and 1 (partition 1) started
    removed = queue.remove(lambda r: r.partition == 1)
    assert [r.offset for r, _f in removed] == [1, 3, 5]
    assert removed[0][1] is not None and removed[1][1] is None  # started / not started
    assert [r.offset for r in queue] == [0, 2, 4]


def test_the_queue_pauses_fetching_at_max_records_and_resumes_at_a_quarter() -> None:
    queue = read_ahead(HeldExecutor())
    for i in range(8):
        queue.add(record(i))
    assert queue.full() and not queue.drained()
    queue.remove(lambda r: r.offset >= 2)
    assert queue.drained()
