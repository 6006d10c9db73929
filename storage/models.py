"""SQLAlchemy 2.0 models of every table cartmem keeps.

Portable types only (JSON becomes JSONB on PostgreSQL, big integer keys become INTEGER on
SQLite so they still autoincrement), so the same models serve the embedded SQLite default
and production PostgreSQL. Tensors are stored as raw bytes with dtype and shape columns:
this package never imports torch and nothing is ever unpickled.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonValue = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)

SESSION_ID_LENGTH = 128
SKU_LENGTH = 64


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar = {dict[str, Any]: JsonValue, list[Any]: JsonValue}


def _created_at() -> Mapped[dt.datetime]:
    return mapped_column(Timestamp, server_default=sa.func.now())


def _updated_at() -> Mapped[dt.datetime]:
    return mapped_column(Timestamp, server_default=sa.func.now(), onupdate=sa.func.now())


def _enum_check(column: str, values: type[enum.Enum]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_valid")


class SessionStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class QueryKind(enum.StrEnum):
    ACTIVITY = "activity"
    OBJECT = "object"
    TIME = "time"


class QueryStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ShoppingSession(Base):
    """One shopping session: the unit a memory, its queries and its reconciliation belong to."""

    __tablename__ = "sessions"
    __table_args__ = (_enum_check("status", SessionStatus),)

    id: Mapped[str] = mapped_column(sa.String(SESSION_ID_LENGTH), primary_key=True)
    store_id: Mapped[str | None] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(sa.String(16), default=SessionStatus.OPEN.value)
    # the session_start payload (store, timestamps, candidate SKUs) as the store system sent it
    start_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    end_info: Mapped[dict[str, Any] | None] = mapped_column()
    # highest per-session seq absorbed so far; -1 before the first message
    last_seq: Mapped[int] = mapped_column(sa.BigInteger, default=-1)
    # [[expected, received], ...]: gaps in seq noticed while ingesting, kept as evidence
    seq_gaps: Mapped[list[Any]] = mapped_column(default=list)
    # [{"reason": ..., "seq": ..., ...}, ...]: video lost on the way (a truncated chunk, a clip
    # the model could not write, an expiry), so that nothing is lost without a trace
    losses: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    # the Kafka partition the session's messages arrive on: the owner of that partition
    # is the worker that may close the session when it goes quiet
    source_topic: Mapped[str | None] = mapped_column(sa.String(255))
    source_partition: Mapped[int | None] = mapped_column(sa.Integer)
    started_at: Mapped[dt.datetime] = _created_at()
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    updated_at: Mapped[dt.datetime] = _updated_at()

    memory: Mapped[SessionMemory | None] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True
    )


class SessionMemory(Base):
    """A session's fixed-size memory and the clip frames not yet written into it.

    The arrays themselves live in ``memory_arrays``; this row says whose they are, how far
    into the session they reach and which model wrote them.
    """

    __tablename__ = "session_memories"

    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    frames_seen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    model_version: Mapped[str] = mapped_column(sa.String(128))
    # frames per second the memory was written at: a step of its time index is 1 / fps
    # seconds, whatever the reader's own settings say (None only before migration 0004
    # could read it from pending_info)
    fps: Mapped[float | None] = mapped_column(sa.Float)
    # scalars of the pending clip (e.g. the session time of its next frame), kept beside it
    pending_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # raised each time the memory's arrays are written (not when only pending frames are):
    # what answer workers key their cache on, since updated_at moves with every commit
    memory_version: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    updated_at: Mapped[dt.datetime] = _updated_at()

    session: Mapped[ShoppingSession] = relationship(back_populates="memory")
    arrays: Mapped[list[MemoryArray]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="MemoryArray.name"
    )


class ArrayPart(enum.StrEnum):
    MEMORY = "memory"  # the written memory: tokens, time and spatial index, ...
    PENDING = "pending"  # frames of the clip being filled
    # kept beside the memory and rewritten with it, never read to answer: the cart band of
    # each memory step (``app.video.cart_band``), which reconciliation reads
    BAND = "band"


class MemoryArray(Base):
    """One named array of a session's memory or pending clip: raw bytes, dtype and shape.

    Bytes are C-ordered little-endian as numpy writes them; ``dtype`` is a numpy dtype name.
    """

    __tablename__ = "memory_arrays"
    __table_args__ = (_enum_check("part", ArrayPart),)

    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("session_memories.session_id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    dtype: Mapped[str] = mapped_column(sa.String(16))
    shape: Mapped[list[Any]] = mapped_column()
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class EvidenceThumbnail(Base):
    """A small picture of one moment of a session's video, as the memory saw it, kept so
    that staff can look at a flag's evidence after the video itself is gone.

    Written by the ingest commit, in its transaction; the key (session, video time) makes a
    replayed commit unable to store a moment twice.
    """

    __tablename__ = "evidence_thumbnails"

    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    # microseconds from session start: the memory sample this picture shows
    time_us: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    media_type: Mapped[str] = mapped_column(sa.String(32))  # e.g. image/jpeg
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class PartitionOffset(Base):
    """The next Kafka offset to read per partition, written in the commit transaction,
    and the epoch of the worker that owns the partition (fencing, ``storage.ingest_state``)."""

    __tablename__ = "partition_offsets"

    consumer_group: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    partition: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    next_offset: Mapped[int | None] = mapped_column(sa.BigInteger)  # None: claimed, never saved
    owner_epoch: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    updated_at: Mapped[dt.datetime] = _updated_at()


class Product(Base):
    """A catalog entry: the SKU the till scans and the reference image the model looks for."""

    __tablename__ = "products"
    __table_args__ = (sa.CheckConstraint("price IS NULL OR price >= 0", name="price_nonnegative"),)

    sku: Mapped[str] = mapped_column(sa.String(SKU_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    price: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    image_png: Mapped[bytes] = mapped_column(sa.LargeBinary)
    image_sha256: Mapped[str] = mapped_column(sa.String(64))
    image_width: Mapped[int] = mapped_column(sa.Integer)
    image_height: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[dt.datetime] = _created_at()


class Query(Base):
    """A question a checkout service (or cartmem itself) asks about one session."""

    __tablename__ = "queries"
    __table_args__ = (
        _enum_check("kind", QueryKind),
        _enum_check("status", QueryStatus),
        sa.Index("ix_queries_claimable", "status", "not_before"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(sa.String(SESSION_ID_LENGTH), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    # kind-specific: sku / activity / window start and end in seconds from session start
    params: Mapped[dict[str, Any]] = mapped_column()
    # server defaults: checkout services insert rows with plain SQL
    status: Mapped[str] = mapped_column(
        sa.String(16), default=QueryStatus.PENDING.value, server_default=QueryStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # a claim holds until lease_expires_at; after that any worker may claim it again
    leased_by: Mapped[str | None] = mapped_column(sa.String(255))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    # retry backoff: not claimable before this time
    not_before: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=sa.func.now())
    error: Mapped[str | None] = mapped_column(sa.Text)
    origin: Mapped[str] = mapped_column(sa.String(32), default="api", server_default="api")
    created_at: Mapped[dt.datetime] = _created_at()
    updated_at: Mapped[dt.datetime] = _updated_at()

    answer: Mapped[Answer | None] = relationship(back_populates="query")


class Answer(Base):
    """The one answer to a query (the unique constraint makes a second one impossible)."""

    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    query_id: Mapped[int] = mapped_column(
        sa.ForeignKey("queries.id", ondelete="CASCADE"), unique=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column()
    model_version: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[dt.datetime] = _created_at()

    query: Mapped[Query] = relationship(back_populates="answer")


class Scan(Base):
    """One line the point-of-sale scanned for a session."""

    __tablename__ = "scans"
    __table_args__ = (sa.CheckConstraint("qty > 0", name="qty_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(sa.String(SESSION_ID_LENGTH), index=True)
    sku: Mapped[str] = mapped_column(sa.String(SKU_LENGTH))
    qty: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")
    scanned_at: Mapped[dt.datetime] = _created_at()


class Reconciliation(Base):
    """Expected basket vs scanned items for a finished session, with the discrepancies."""

    __tablename__ = "reconciliations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("sessions.id", ondelete="CASCADE"), unique=True
    )
    expected: Mapped[list[Any]] = mapped_column()
    scanned: Mapped[list[Any]] = mapped_column()
    discrepancies: Mapped[list[Any]] = mapped_column()
    model_version: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[dt.datetime] = _created_at()
    updated_at: Mapped[dt.datetime] = _updated_at()


class DeadLetter(Base):
    """A message the ingest worker could not use, kept with enough to find and judge it."""

    __tablename__ = "dead_letters"
    # replaying a partition after a crash meets the same bad message again: record it once
    __table_args__ = (sa.UniqueConstraint("topic", "partition", "offset"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(sa.String(255))
    partition: Mapped[int] = mapped_column(sa.Integer)
    offset: Mapped[int] = mapped_column(sa.BigInteger)
    key: Mapped[str | None] = mapped_column(sa.String(512))
    session_id: Mapped[str | None] = mapped_column(sa.String(SESSION_ID_LENGTH), index=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    size: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    head: Mapped[bytes] = mapped_column(sa.LargeBinary)  # first bytes of the value, for a look
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = _created_at()
    # `cartmem deadletters replay`: when the message was sent again, and to which offset
    replayed_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    replayed_offset: Mapped[int | None] = mapped_column(sa.BigInteger)


class ReviewVerdict(enum.StrEnum):
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


class FlagReview(Base):
    """A verdict staff gave on one flag; append-only, the latest per (session, sku) counts.

    ``flag`` is the discrepancy as it was when reviewed (kind, counts, confidence, the
    evidence's times), so the review stays labelled data after a recomputation changes or
    drops the flag.
    """

    __tablename__ = "flag_reviews"
    __table_args__ = (_enum_check("verdict", ReviewVerdict),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(sa.String(SKU_LENGTH))
    verdict: Mapped[str] = mapped_column(sa.String(16))
    note: Mapped[str | None] = mapped_column(sa.Text)
    reviewer: Mapped[str] = mapped_column(sa.String(255))
    flag: Mapped[dict[str, Any]] = mapped_column()
    model_version: Mapped[str] = mapped_column(sa.String(128))
    reviewed_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=sa.func.now())


class WebhookDelivery(Base):
    """A POST owed to the till about a stored reconciliation (an outbox row).

    Written in the transaction that stores the reconciliation; ``delivered_at`` is set once
    the receiver answered 2xx. Until then it is retried from ``next_attempt_at`` on.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_due", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(sa.ForeignKey("sessions.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column()
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=sa.func.now())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = _created_at()


class Erasure(Base):
    """What an erased session leaves: that it was erased, when, by whom, and what went.

    No foreign key: the session it names is gone.
    """

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(sa.String(SESSION_ID_LENGTH), index=True)
    erased_by: Mapped[str] = mapped_column(sa.String(255))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    rows_deleted: Mapped[dict[str, Any]] = mapped_column()  # table -> rows
    erased_at: Mapped[dt.datetime] = _created_at()
