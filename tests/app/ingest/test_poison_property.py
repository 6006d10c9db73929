"""Whatever a topic holds, the worker goes on: random keys, headers and values go through the
same parse → decode → apply → commit path as real records, against a real PostgreSQL
(the strict one: it refuses NUL characters, lone surrogates and non-finite numbers), and
every record must end applied, skipped as a duplicate or stored as a dead letter."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import db as database_ops
from app.db import Database
from app.ingest import IngestEngine
from app.ingest.records import Record
from app.ingest.session import LiveSession
from app.model_runtime import load_model
from app.settings import Settings
from app.video import cut_chunks
from storage import DeadLetter, PartitionOffset, ShoppingSession
from storage.ingest_state import load_session

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SESSION_KEYS = [b"p-a", b"p-b", b"p-c"]
TYPES = ["chunk", "chunk", "chunk", "session_start", "session_end"]


def _text_bytes(max_size: int) -> st.SearchStrategy[bytes]:
    """Bytes as a hostile producer sends them: UTF-8 text (NUL and lone surrogates too) or not."""
    return st.one_of(
        st.text(max_size=max_size).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=max_size),
    )


def _json_payloads() -> st.SearchStrategy[bytes]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )
    documents = st.dictionaries(
        st.sampled_from(["store_id", "candidate_skus", "camera", "cameras", "note"])
        | st.text(max_size=8),
        values,
        max_size=5,
    )
    crafted = st.sampled_from(
        [
            b'{"n": ' + b"9" * 5000 + b"}",
            b"[" * 5000 + b"]" * 5000,
            b'{"a": NaN}',
            b'{"a": 1e999}',
            b'{"a": "\\u0000"}',
            b'{"a": "\\ud800"}',
            json.dumps({"store_id": "s" * 200}).encode(),
            json.dumps({"candidate_skus": ["A"] * 3 + [7]}).encode(),
        ]
    )
    return st.one_of(
        documents.map(lambda d: json.dumps(d, allow_nan=True).encode()),
        documents.map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
        crafted,
        _text_bytes(300),
    )


WILD_HEADERS: dict[str, st.SearchStrategy[bytes]] = {
    "cartmem-schema": _text_bytes(4),
    "type": _text_bytes(16),
    "seq": st.sampled_from([b"\xc2\xb2", b"-1", b"1e3", b"", b"9" * 30, "٣".encode()])
    | _text_bytes(20),
    "camera": _text_bytes(140),
    "t0": st.sampled_from([b"600", b"1e6", b"1e13", b"1e308", b"nan", b"-0.0", b"inf"])
    | st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode())
    | _text_bytes(12),
    "content-type": _text_bytes(20),
}
MUTATIONS = ["key", "value", "drop", "repeat", "extra", *WILD_HEADERS]


@st.composite
def _records(draw: st.DrawFn, chunks: Sequence[bytes]) -> list[tuple[bytes | None, list, bytes]]:
    """(key, headers, value) of a handful of messages: valid ones of a few sessions, each
    with none to three of its fields replaced by something hostile."""
    messages = []
    for _ in range(draw(st.integers(1, 10))):
        type_ = draw(st.sampled_from(TYPES))
        fields: dict[str, bytes] = {
            "cartmem-schema": b"1",
            "type": type_.encode(),
            "seq": str(draw(st.integers(0, 12))).encode(),
            "camera": b"cam-0",
        }
        if type_ == "chunk":
            fields["t0"] = repr(float(draw(st.integers(0, 40)))).encode()
            fields["content-type"] = b"video/mp2t"
            value = draw(st.sampled_from(chunks))
        else:
            value = json.dumps({"store_id": "store-1", "candidate_skus": ["SKU-1"]}).encode()
        key: bytes | None = draw(st.sampled_from(SESSION_KEYS))
        headers = list(fields.items())
        for mutation in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3, unique=True)):
            if mutation == "key":
                key = draw(st.none() | _text_bytes(140))
            elif mutation == "value":
                value = draw(_hostile_value(value))
            elif mutation == "drop":
                headers.pop(draw(st.integers(0, len(headers) - 1)))
            elif mutation == "repeat":
                headers.append(draw(st.sampled_from(headers)))
            elif mutation == "extra":
                extra = st.tuples(
                    st.sampled_from(["x-trace", "traceparent", "a\x00b"]) | st.text(max_size=12),
                    _text_bytes(40),
                )
                headers += draw(st.lists(extra, min_size=1, max_size=3))
            else:
                wild = draw(WILD_HEADERS[mutation])
                headers = [(n, wild if n == mutation else v) for n, v in headers]
        messages.append((key, draw(st.permutations(headers)), value))
    return messages


def _hostile_value(value: bytes) -> st.SearchStrategy[bytes]:
    cut = st.integers(0, len(value)).map(lambda n: value[:n])
    return st.one_of(
        cut,
        cut.map(lambda head: head + b"\x00" * 64),
        st.binary(max_size=2000),
        _json_payloads(),
    )


@pytest.fixture
def property_settings(pg_settings: Settings, tiny_checkpoint: Path) -> Settings:
    s = dataclasses.replace(
        pg_settings,
        checkpoint_path=str(tiny_checkpoint),
        device="cpu",
        max_live_sessions=8,
        commit_interval_s=0.01,
        max_message_bytes=400_000,
    )
    database_ops.upgrade(s)
    return s


def test_no_record_escapes_parse_apply_or_checkpoint(
    property_settings: Settings, synth_videos: list[Path], list_source: type
) -> None:
    chunks = [c.data for c in cut_chunks(synth_videos[0], chunk_seconds=2.0, max_bytes=400_000)]
    model = load_model(property_settings)
    database = Database(property_settings)
    seen: list[tuple[int, int]] = []  # per example: messages used, clips written

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,  # the examples are drawn afresh each run, not replayed from a cache
    )
    @given(messages=_records(chunks))
    def check(messages: list[tuple[bytes | None, list, bytes]]) -> None:
        tag = uuid.uuid4().hex[:8]
        topic = f"poison-{tag}"
        # this example's own sessions: the database outlives the examples
        own = {key: key + b"-" + tag.encode() for key in SESSION_KEYS}
        records = [
            Record(topic, 0, offset, own.get(key, key), tuple(headers), value)
            for offset, (key, headers, value) in enumerate(messages)
        ]
        engine = IngestEngine(
            property_settings, database, model, list_source(records), decode_workers=1
        )
        stats = engine.run(max_messages=len(records))  # must not raise
        assert stats.applied == len(records)
        seen.append((stats.applied - stats.dead_letters - stats.duplicates, stats.clips))
        with database.session() as db:
            offset = db.scalar(
                sa.select(PartitionOffset.next_offset).where(PartitionOffset.topic == topic)
            )
            letters = db.scalar(
                sa.select(sa.func.count()).select_from(DeadLetter).where(DeadLetter.topic == topic)
            )
            touched = db.scalars(
                sa.select(ShoppingSession.id).where(ShoppingSession.source_topic == topic)
            ).all()
            assert offset == len(records)
            assert letters == stats.dead_letters
            for session_id in touched:  # what was stored reads back into a live session
                snap = load_session(db, session_id)
                assert snap is not None
                LiveSession.from_snapshot(snap, model.net.cfg.fps)

    try:
        check()
    finally:
        database.dispose()
    # the examples reached the model, not only the contract's checks
    assert sum(used for used, _ in seen) > len(seen), seen
    assert sum(1 for _, clips in seen if clips) >= 3, seen
