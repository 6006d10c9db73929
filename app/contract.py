"""Kafka message contract v1: what a store system sends and how cartmem checks it.

Key: the session id (UTF-8). Headers (UTF-8 bytes): ``cartmem-schema=1``, ``type``,
``seq``, ``camera``, and for chunks ``t0`` and ``content-type``. A chunk's value is one
self-contained encoded video segment; a control message's value is a JSON object.
Anything that breaks the contract raises :class:`ContractError` with a sentence that says
what was wrong, which the worker stores as a dead letter.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

SCHEMA_HEADER = "cartmem-schema"
SCHEMA_VERSION = "1"
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CONTENT_TYPES = ("video/mp2t", "video/mp4")
MAX_CONTROL_BYTES = 256 * 1024
MAX_CANDIDATE_SKUS = 10_000


class MessageType(enum.StrEnum):
    CHUNK = "chunk"
    SESSION_START = "session_start"
    SESSION_END = "session_end"


class ContractError(ValueError):
    """A message does not follow contract v1; ``str(error)`` is the reason in one sentence."""


@dataclass(frozen=True)
class Envelope:
    """A checked message. ``t0`` and ``content_type`` are set for chunks only."""

    session_id: str
    type: MessageType
    seq: int
    camera: str
    value: bytes
    t0: float | None = None
    content_type: str | None = None
    control: dict[str, Any] = field(default_factory=dict)


def headers_for(
    type_: MessageType,
    *,
    seq: int,
    camera: str,
    t0: float | None = None,
    content_type: str | None = None,
) -> list[tuple[str, bytes]]:
    """The v1 headers of one message, in the order the contract lists them."""
    headers = [
        (SCHEMA_HEADER, SCHEMA_VERSION),
        ("type", type_.value),
        ("seq", str(seq)),
        ("camera", camera),
    ]
    if type_ is MessageType.CHUNK:
        if t0 is None or content_type is None:
            raise ValueError("a chunk needs t0 and content_type")
        headers += [("t0", repr(float(t0))), ("content-type", content_type)]
    return [(name, value.encode()) for name, value in headers]


def control_value(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def parse(
    key: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] | None,
    value: bytes | None,
    *,
    max_value_bytes: int,
) -> Envelope:
    """Check one consumed record against contract v1."""
    session_id = _session_id(key)
    found = _header_map(headers or ())
    schema = found.get(SCHEMA_HEADER)
    if schema is None:
        raise ContractError(f"the {SCHEMA_HEADER!r} header is missing.")
    if schema != SCHEMA_VERSION:
        raise ContractError(f"schema version {schema!r} is not supported (this worker reads 1).")
    type_ = _message_type(found.get("type"))
    seq = _seq(found.get("seq"))
    camera = found.get("camera")
    if not camera:
        raise ContractError("the 'camera' header is missing or empty.")
    value = value or b""
    if len(value) > max_value_bytes:
        raise ContractError(
            f"the message is {len(value)} bytes, over the {max_value_bytes}-byte limit."
        )
    if type_ is MessageType.CHUNK:
        if not value:
            raise ContractError("the chunk has no video bytes.")
        return Envelope(
            session_id,
            type_,
            seq,
            camera,
            value,
            t0=_t0(found.get("t0")),
            content_type=_content_type(found.get("content-type")),
        )
    return Envelope(session_id, type_, seq, camera, value, control=_control(type_, value))


def _header_map(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, raw in headers:
        if name in found:
            raise ContractError(f"the {name!r} header appears more than once.")
        try:
            found[name] = (raw or b"").decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ContractError(f"the {name!r} header is not UTF-8 text.") from None
    return found


def _session_id(key: bytes | None) -> str:
    if not key:
        raise ContractError("the message has no key; the key must be the session id.")
    try:
        session_id = key.decode("utf-8")
    except UnicodeDecodeError:
        raise ContractError("the key is not UTF-8 text; it must be the session id.") from None
    if not SESSION_ID_PATTERN.fullmatch(session_id):
        raise ContractError(
            f"session id {session_id[:140]!r} is not 1-128 letters, digits, '.', '_', ':' or '-'."
        )
    return session_id


def _message_type(raw: str | None) -> MessageType:
    if raw is None:
        raise ContractError("the 'type' header is missing.")
    try:
        return MessageType(raw)
    except ValueError:
        allowed = ", ".join(t.value for t in MessageType)
        raise ContractError(f"type {raw[:40]!r} is unknown (expected one of {allowed}).") from None


def _seq(raw: str | None) -> int:
    if raw is None:
        raise ContractError("the 'seq' header is missing.")
    if not raw.isdigit() or len(raw) > 18:
        raise ContractError(f"seq {raw[:40]!r} is not a non-negative integer.")
    return int(raw)


def _t0(raw: str | None) -> float:
    if raw is None:
        raise ContractError("the chunk has no 't0' header (seconds from session start).")
    try:
        t0 = float(raw)
    except ValueError:
        raise ContractError(f"t0 {raw[:40]!r} is not a number of seconds.") from None
    if not math.isfinite(t0) or t0 < 0:
        raise ContractError(f"t0 {raw[:40]!r} must be a finite number of seconds, zero or more.")
    return t0


def _content_type(raw: str | None) -> str:
    if raw is None:
        raise ContractError("the chunk has no 'content-type' header.")
    if raw not in CONTENT_TYPES:
        raise ContractError(
            f"content-type {raw[:60]!r} is not supported (expected {' or '.join(CONTENT_TYPES)})."
        )
    return raw


def _control(type_: MessageType, value: bytes) -> dict[str, Any]:
    if len(value) > MAX_CONTROL_BYTES:
        raise ContractError(f"the {type_.value} payload is over {MAX_CONTROL_BYTES} bytes.")
    if not value:
        return {}
    try:
        payload = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ContractError(f"the {type_.value} payload is not JSON.") from None
    if not isinstance(payload, dict):
        raise ContractError(f"the {type_.value} payload must be a JSON object.")
    skus = payload.get("candidate_skus")
    if skus is not None and not _is_str_list(skus, MAX_CANDIDATE_SKUS):
        raise ContractError(
            f"candidate_skus must be a list of at most {MAX_CANDIDATE_SKUS} SKU strings."
        )
    store = payload.get("store_id")
    if store is not None and not isinstance(store, str):
        raise ContractError("store_id must be a string.")
    return payload


def _is_str_list(value: Any, limit: int) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and (len(value) <= limit and all(isinstance(v, str) and 0 < len(v) <= 64 for v in value))
    )
