"""Kafka message contract v1: what a store system sends and how cartmem checks it.

Key: the session id (UTF-8). Headers (UTF-8 bytes): ``cartmem-schema=1``, ``type``,
``seq`` (counted per session and camera), ``camera``, and for chunks ``t0`` and
``content-type``. A chunk's value is one
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
SEQ_PATTERN = re.compile(r"[0-9]{1,18}")  # ASCII digits only: '²' passes str.isdigit
CAMERA_PATTERN = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces
MAX_CAMERAS = 4  # a session's cameras share one picture per step (app/ingest/cameras.py)
CONTENT_TYPES = ("video/mp2t", "video/mp4")
# the headers this contract reads; repeats of any other header (tracing middleware adds
# them) are none of its business
CONTRACT_HEADERS = frozenset({"cartmem-schema", "type", "seq", "camera", "t0", "content-type"})
MAX_CONTROL_BYTES = 256 * 1024
MAX_CANDIDATE_SKUS = 10_000
MAX_STORE_ID_CHARS = 128  # the sessions.store_id column
# a week of session time: far past any shopping trip, and small enough that microsecond
# arithmetic on it cannot overflow
MAX_T0_S = 7 * 24 * 3600.0
# control payloads are stored as JSONB: only what PostgreSQL accepts and Python parses safely
MAX_JSON_DEPTH = 32
MAX_JSON_INT_DIGITS = 19


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
    if not CAMERA_PATTERN.fullmatch(camera):
        raise ContractError(
            f"camera {camera[:40]!r} is not 1-128 printable ASCII characters without spaces."
        )
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
    """The contract's headers as text; any other header is ignored, repeated or not."""
    found: dict[str, str] = {}
    for name, raw in headers:
        if name not in CONTRACT_HEADERS:
            continue
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
    if not SEQ_PATTERN.fullmatch(raw):
        raise ContractError(f"seq {raw[:40]!r} is not a non-negative integer of ASCII digits.")
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
    if t0 > MAX_T0_S:
        raise ContractError(f"t0 {raw[:40]!r} is more than a week of session time.")
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
    payload = _json_object(type_, value)
    skus = payload.get("candidate_skus")
    if skus is not None and not _is_str_list(skus, MAX_CANDIDATE_SKUS):
        raise ContractError(
            f"candidate_skus must be a list of at most {MAX_CANDIDATE_SKUS} SKU strings."
        )
    store = payload.get("store_id")
    if store is not None and not (isinstance(store, str) and len(store) <= MAX_STORE_ID_CHARS):
        raise ContractError(
            f"store_id must be a string of at most {MAX_STORE_ID_CHARS} characters."
        )
    if payload.get("cameras") is not None:
        check_cameras(payload["cameras"])
    return payload


def check_cameras(cameras: object) -> None:
    """A session_start's ``cameras``: the session's camera ids, declared up front."""
    if not (
        isinstance(cameras, list)
        and 1 <= len(cameras) <= MAX_CAMERAS
        and all(isinstance(c, str) and CAMERA_PATTERN.fullmatch(c) for c in cameras)
        and len(set(cameras)) == len(cameras)
    ):
        raise ContractError(
            f"cameras must be a list of 1 to {MAX_CAMERAS} different camera ids (1-128 "
            "printable ASCII characters without spaces)."
        )


def _json_object(type_: MessageType, value: bytes) -> dict[str, Any]:
    """The payload as a JSON object PostgreSQL can store as JSONB and Python handles safely."""
    what = f"the {type_.value} payload"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise ContractError(f"{what} is not UTF-8 text.") from None
    try:
        payload = json.loads(
            text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_short_int
        )
    except ContractError as exc:
        raise ContractError(f"{what} {exc}") from None
    except RecursionError:
        raise ContractError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError:  # JSONDecodeError, and int() past Python's digit limit
        raise ContractError(f"{what} is not JSON.") from None
    if not isinstance(payload, dict):
        raise ContractError(f"{what} must be a JSON object.")
    problem = _unstorable(payload, depth=1)
    if problem is not None:
        raise ContractError(f"{what} {problem}")
    return payload


def _no_constant(name: str) -> Any:
    raise ContractError(f"holds {name}, which JSON does not allow.")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ContractError(f"holds the number {text[:40]}, too large to be finite.")
    return number


def _short_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ContractError(f"holds an integer of {len(text)} digits (at most 19).")
    return int(text)


def _unstorable(value: Any, depth: int) -> str | None:
    """Why ``value`` cannot be stored as JSONB (a phrase ending in '.'), or None."""
    if depth > MAX_JSON_DEPTH:
        return f"nests deeper than {MAX_JSON_DEPTH} levels."
    if isinstance(value, str):
        return _bad_text(value)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _bad_text(key) or _unstorable(item, depth + 1)
            if problem is not None:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = _unstorable(item, depth + 1)
            if problem is not None:
                return problem
    return None


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "holds a NUL character, which PostgreSQL text cannot store."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds an unpaired UTF-16 surrogate, which is not text."
    return None


def _is_str_list(value: Any, limit: int) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and (len(value) <= limit and all(isinstance(v, str) and 0 < len(v) <= 64 for v in value))
    )
