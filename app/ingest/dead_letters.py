"""Dead-letter rows for records the worker could not use, made safe to store whatever the
record held: PostgreSQL text refuses NUL characters and unpaired surrogates, and a column has
a length, so every text field is escaped and cut before it reaches the commit."""

from __future__ import annotations

import hashlib

from app.ingest.records import Record
from storage.ingest_state import DeadLetterRecord

HEAD_BYTES = 64  # of a dead letter's value, kept for a look
_KEY_CHARS = 512  # dead_letters.key
_HEADER_CHARS = 256
_MAX_HEADERS = 32
_REASON_CHARS = 2000


def storable_text(raw: bytes | str | None, limit: int) -> str:
    """``raw`` as text PostgreSQL accepts: invalid UTF-8, NUL and lone surrogates escaped."""
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="backslashreplace")
    else:
        text = raw.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")[:limit]


def dead_letter_record(record: Record, reason: str, session_id: str | None) -> DeadLetterRecord:
    value = record.value or b""
    headers: dict[str, str] = {}
    for name, raw in record.headers[:_MAX_HEADERS]:
        label = storable_text(name, _HEADER_CHARS)
        if label in headers:  # a repeated header: keep each value under its own name
            label = f"{label}#{sum(1 for h in headers if h.split('#')[0] == label) + 1}"
        headers[label] = storable_text(raw, _HEADER_CHARS)
    return DeadLetterRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=None if record.key is None else storable_text(record.key, _KEY_CHARS),
        session_id=session_id,
        reason=storable_text(reason, _REASON_CHARS),
        size=len(value),
        sha256=hashlib.sha256(value).hexdigest(),
        head=value[:HEAD_BYTES],
        headers=headers,
    )
