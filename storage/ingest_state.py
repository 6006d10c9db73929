"""The ingest commit: every dirty session (with its evidence thumbnails), the dead letters
and the partition offsets, written in one transaction, and read back after a crash or a
rebalance.

Everything here is plain bytes and numbers; the app turns arrays into tensors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.errors import FencedError
from storage.evidence import Thumbnail, save_thumbnails, thumbnail_index
from storage.models import (
    ArrayPart,
    DeadLetter,
    MemoryArray,
    PartitionOffset,
    SessionMemory,
    SessionStatus,
    ShoppingSession,
)
from storage.query_queue import database_now


@dataclass(frozen=True)
class ArrayBlob:
    """One array as storage keeps it: C-ordered bytes, a numpy dtype name and a shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    data: bytes


@dataclass(frozen=True)
class SessionSnapshot:
    """A session's whole ingest state at a commit."""

    session_id: str
    status: str = SessionStatus.OPEN.value
    store_id: str | None = None
    start_info: dict[str, Any] = field(default_factory=dict)
    end_info: dict[str, Any] | None = None
    last_seq: int = -1
    seq_gaps: tuple[tuple[int, int], ...] = ()
    losses: tuple[dict[str, Any], ...] = ()
    source: tuple[str, int] | None = None  # (topic, partition) its messages arrive on
    frames_seen: int = 0
    model_version: str = ""
    fps: float | None = None  # frames per second the memory is written at
    pending_info: dict[str, Any] = field(default_factory=dict)
    # saving: the memory's arrays when it changed since the last commit (none: unchanged),
    # pending arrays to write (each replaces the stored one of its name), and the names of
    # stored pending arrays to keep as they are; every other stored pending array goes.
    # The band's arrays are written with the memory and replace the stored ones (none: the
    # stored memory has no band). Loading: every stored array.
    memory: tuple[ArrayBlob, ...] = ()
    pending: tuple[ArrayBlob, ...] = ()
    pending_kept: tuple[str, ...] = ()
    band: tuple[ArrayBlob, ...] = ()
    # evidence thumbnails (``storage.evidence``): those taken since the last commit and the
    # times (microseconds) of stored ones that thinning removed; a loaded snapshot has
    # neither, but the (time, bytes) of every stored one, which thinning goes on from
    thumbnails: tuple[Thumbnail, ...] = ()
    thumbnails_dropped: tuple[int, ...] = ()
    thumbnail_sizes: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class DeadLetterRecord:
    topic: str
    partition: int
    offset: int
    key: str | None
    session_id: str | None
    reason: str
    size: int
    sha256: str
    head: bytes
    headers: dict[str, str]


def claim_partitions(
    db: Session, group: str, partitions: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], tuple[int | None, int]]:
    """Take ``partitions`` over: raise each one's owner epoch (a row is made for a new one).

    Returns, per partition, the stored next offset (None: never committed) and the epoch
    this owner must show in every commit (``commit_ingest_state(epochs=...)``).
    """
    claimed = {}
    for topic, partition in sorted(set(partitions)):
        row = db.get(PartitionOffset, (group, topic, partition), with_for_update=True)
        if row is None:
            row = PartitionOffset(
                consumer_group=group, topic=topic, partition=partition, next_offset=None
            )
            row.owner_epoch = 1
            db.add(row)
        else:
            row.owner_epoch += 1
        db.flush()
        claimed[(topic, partition)] = (row.next_offset, row.owner_epoch)
    return claimed


def commit_ingest_state(
    db: Session,
    *,
    group: str,
    offsets: Mapping[tuple[str, int], int],
    sessions: Sequence[SessionSnapshot],
    dead_letters: Sequence[DeadLetterRecord] = (),
    epochs: Mapping[tuple[str, int], int] | None = None,
) -> None:
    """Write sessions, dead letters and next offsets; the caller's transaction makes it atomic.

    ``epochs``: the owner epoch of every partition the writer owns (``claim_partitions``).
    Their rows are locked first; if another worker has claimed any of them since, nothing
    is written and ``FencedError`` names them (the caller's transaction rolls back).
    """
    if epochs:
        _check_epochs(db, group, epochs)
    for snapshot in sessions:
        _save_session(db, snapshot)
    for letter in dead_letters:
        _save_dead_letter(db, letter)
    for (topic, partition), next_offset in offsets.items():
        row = db.get(PartitionOffset, (group, topic, partition))
        if row is None:
            db.add(
                PartitionOffset(
                    consumer_group=group, topic=topic, partition=partition, next_offset=next_offset
                )
            )
        else:
            row.next_offset = next_offset
    db.flush()


def _check_epochs(db: Session, group: str, epochs: Mapping[tuple[str, int], int]) -> None:
    """Lock the writer's partition rows (one query) and refuse if any has a newer owner."""
    rows = db.scalars(
        sa.select(PartitionOffset)
        .where(
            PartitionOffset.consumer_group == group,
            sa.tuple_(PartitionOffset.topic, PartitionOffset.partition).in_(list(epochs)),
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    held = {(r.topic, r.partition): r.owner_epoch for r in rows}
    stale = sorted(tp for tp, epoch in epochs.items() if held.get(tp) != epoch)
    if stale:
        raise FencedError(stale)


def load_session(db: Session, session_id: str) -> SessionSnapshot | None:
    """The state the last commit stored for ``session_id``, or None for a new session."""
    session = db.get(ShoppingSession, session_id)
    if session is None:
        return None
    memory = db.get(SessionMemory, session_id)
    arrays = memory.arrays if memory is not None else []

    def part(name: ArrayPart) -> tuple[ArrayBlob, ...]:
        return tuple(
            ArrayBlob(a.name, a.dtype, tuple(a.shape), a.data)
            for a in arrays
            if a.part == name.value
        )

    return SessionSnapshot(
        session_id=session.id,
        status=session.status,
        store_id=session.store_id,
        start_info=dict(session.start_info or {}),
        end_info=session.end_info,
        last_seq=session.last_seq,
        seq_gaps=tuple((int(a), int(b)) for a, b in session.seq_gaps or []),
        losses=tuple(dict(loss) for loss in session.losses or []),
        source=(
            (session.source_topic, session.source_partition)
            if session.source_topic is not None and session.source_partition is not None
            else None
        ),
        frames_seen=memory.frames_seen if memory else 0,
        model_version=memory.model_version if memory else "",
        fps=memory.fps if memory else None,
        pending_info=dict(memory.pending_info or {}) if memory else {},
        memory=part(ArrayPart.MEMORY),
        pending=part(ArrayPart.PENDING),
        band=part(ArrayPart.BAND),
        thumbnail_sizes=tuple(thumbnail_index(db, session_id)),
    )


def quiet_open_sessions(
    db: Session,
    partitions: Iterable[tuple[str, int]],
    *,
    idle_s: float,
    exclude: Iterable[str] = (),
    limit: int = 100,
) -> list[tuple[str, tuple[str, int]]]:
    """Open sessions of ``partitions`` unchanged for ``idle_s`` seconds by the database's
    clock, with their partition: (session id, (topic, partition)), oldest first."""
    partitions = sorted(set(partitions))
    if not partitions:
        return []
    cutoff = database_now(db) - dt.timedelta(seconds=idle_s)
    rows = db.execute(
        sa.select(
            ShoppingSession.id, ShoppingSession.source_topic, ShoppingSession.source_partition
        )
        .where(
            ShoppingSession.status == SessionStatus.OPEN.value,
            ShoppingSession.updated_at < cutoff,
            sa.tuple_(ShoppingSession.source_topic, ShoppingSession.source_partition).in_(
                partitions
            ),
            ShoppingSession.id.not_in(list(exclude)),
        )
        .order_by(ShoppingSession.updated_at)
        .limit(limit)
    ).all()
    return [
        (sid, (str(topic), int(partition)))
        for sid, topic, partition in rows
        if topic is not None and partition is not None  # the filter above guarantees it
    ]


def record_partition_loss(
    db: Session, *, topic: str, partition: int, loss: dict[str, Any]
) -> list[str]:
    """Append ``loss`` to the ``losses`` of every open session of the partition (once: a
    session that holds an equal entry keeps it); returns their ids."""
    rows = db.scalars(
        sa.select(ShoppingSession)
        .where(
            ShoppingSession.status == SessionStatus.OPEN.value,
            ShoppingSession.source_topic == topic,
            ShoppingSession.source_partition == partition,
        )
        .order_by(ShoppingSession.id)
        .with_for_update()
    ).all()
    for row in rows:
        if loss not in row.losses:
            row.losses = [*row.losses, loss]
    db.flush()
    return [row.id for row in rows]


def _save_session(db: Session, snap: SessionSnapshot) -> None:
    session = _get_or_add(db, ShoppingSession, id=snap.session_id)
    session.status = snap.status
    session.store_id = snap.store_id
    session.start_info = snap.start_info
    session.end_info = snap.end_info
    session.last_seq = snap.last_seq
    session.seq_gaps = [list(gap) for gap in snap.seq_gaps]
    session.losses = [dict(loss) for loss in snap.losses]
    if snap.source is not None:
        session.source_topic, session.source_partition = snap.source
    if snap.status == SessionStatus.CLOSED.value and session.ended_at is None:
        session.ended_at = dt.datetime.now(dt.UTC)
    if snap.thumbnails or snap.thumbnails_dropped:
        db.flush()  # the session row first: thumbnails refer to it
        save_thumbnails(db, snap.session_id, added=snap.thumbnails, dropped=snap.thumbnails_dropped)
    if not snap.model_version:
        return  # nothing written into a memory yet
    memory = _get_or_add(db, SessionMemory, session_id=snap.session_id)
    memory.frames_seen = snap.frames_seen
    if snap.memory or memory.model_version is None:
        memory.model_version = snap.model_version
    if snap.memory:
        memory.memory_version = (memory.memory_version or 0) + 1
    if snap.fps is not None:
        memory.fps = snap.fps
    memory.pending_info = snap.pending_info
    db.flush()  # the memory row first: its arrays refer to it
    # arrays are written and deleted by name, never read back: a commit's bytes are what
    # changed, not what the session holds
    stale = [(ArrayPart.PENDING, snap.pending_kept)]
    if snap.memory:
        stale += [(ArrayPart.MEMORY, ()), (ArrayPart.BAND, ())]
    for part, keep in stale:
        db.execute(
            sa.delete(MemoryArray)
            .where(
                MemoryArray.session_id == snap.session_id,
                MemoryArray.part == part.value,
                MemoryArray.name.not_in(list(keep)),
            )
            .execution_options(synchronize_session=False)
        )
    rows = [
        {
            "session_id": snap.session_id,
            "part": part.value,
            "name": blob.name,
            "dtype": blob.dtype,
            "shape": list(blob.shape),
            "data": blob.data,
        }
        for part, blobs in (
            (ArrayPart.MEMORY, snap.memory),
            (ArrayPart.PENDING, snap.pending),
            (ArrayPart.BAND, snap.band if snap.memory else ()),
        )
        for blob in blobs
    ]
    if rows:
        db.execute(sa.insert(MemoryArray), rows)


def _save_dead_letter(db: Session, letter: DeadLetterRecord) -> None:
    # a replay after a crash meets the same bad message again: keep the first record
    exists = db.scalar(
        sa.select(DeadLetter.id).where(
            DeadLetter.topic == letter.topic,
            DeadLetter.partition == letter.partition,
            DeadLetter.offset == letter.offset,
        )
    )
    if exists is None:
        db.add(DeadLetter(**letter.__dict__))


_Row = TypeVar("_Row", ShoppingSession, SessionMemory)


def _get_or_add(db: Session, model: type[_Row], **key: str) -> _Row:
    """The row of ``model`` with primary ``key``, added to ``db`` if there is none yet."""
    row = db.get(model, next(iter(key.values())))  # the one primary-key column
    if row is None:
        row = model(**key)
        db.add(row)
    return row
