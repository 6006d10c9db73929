"""Ingest against the real broker and PostgreSQL: exactness, crashes, poison, replays, groups."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.partitioner.default import murmur2

from app import contract
from app import db as database_ops
from app.contract import MessageType
from app.db import Database
from app.ingest import IngestEngine, KafkaSource
from app.model_runtime import load_model
from app.publish import publish_video, session_messages
from app.settings import Settings
from app.video import cut_chunks
from storage import DeadLetter, PartitionOffset, ShoppingSession

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def make_topic(bootstrap: str, partitions: int) -> str:
    name = f"video-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, partitions, 1)])
    admin.close()
    return name


@pytest.fixture
def settings(pg_settings: Settings, kafka_bootstrap: str, tiny_checkpoint: Path) -> Settings:
    s = dataclasses.replace(
        pg_settings,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic=make_topic(kafka_bootstrap, 2),
        group=f"ingest-{uuid.uuid4().hex[:8]}",
        checkpoint_path=str(tiny_checkpoint),
        device="cpu",
        commit_interval_s=0.5,
        kafka_session_timeout_ms=6000,
    )
    database_ops.upgrade(s)
    return s


def run_engine(settings: Settings, idle_s: float = 4.0):
    database = Database(settings)
    try:
        engine = IngestEngine(settings, database, load_model(settings), KafkaSource(settings))
        return engine.run(until_idle_s=idle_s)
    finally:
        database.dispose()


def dead_letters(settings: Settings) -> list[DeadLetter]:
    database = Database(settings)
    try:
        with database.session() as db:
            return list(db.query(DeadLetter).order_by(DeadLetter.offset))
    finally:
        database.dispose()


def assert_closed_and_exact(settings, sessions, reference_memory, stored_memory) -> None:
    for session_id, video in sessions.items():
        memory, snap = stored_memory(settings, session_id)
        assert snap.status == "closed", session_id
        assert memory.equal(reference_memory(video)), session_id


def assert_thumbnails_exact(settings, sessions, reference_thumbnails, stored_thumbnails) -> None:
    """Each session kept the evidence thumbnails an uninterrupted run keeps: none twice,
    none lost, the same thinning."""
    fps = load_model(settings).net.cfg.fps
    for session_id, video in sessions.items():
        kept = stored_thumbnails(settings, session_id)
        assert kept and kept == reference_thumbnails(video, settings, fps), session_id


def test_a_published_session_is_ingested_exactly(
    settings, synth_videos, reference_memory, stored_memory
) -> None:
    sessions = {f"s-{i}": v for i, v in enumerate(synth_videos)}
    for session_id, video in sessions.items():
        publish_video(
            settings, video, session_id, chunk_seconds=3.0, start_info={"store_id": "st-1"}
        )
    stats = run_engine(settings)
    assert stats.sessions_closed == len(sessions) and stats.dead_letters == 0
    assert_closed_and_exact(settings, sessions, reference_memory, stored_memory)
    assert dead_letters(settings) == []


def test_republished_chunks_change_nothing(settings, synth_videos, stored_memory) -> None:
    video = synth_videos[0]
    publish_video(settings, video, "again", chunk_seconds=3.0)
    run_engine(settings)
    before, snap = stored_memory(settings, "again")
    publish_video(settings, video, "again", chunk_seconds=3.0)
    stats = run_engine(settings)
    after, snap_after = stored_memory(settings, "again")
    assert stats.applied > 0 and stats.duplicates == stats.applied and stats.dead_letters == 0
    assert after.equal(before) and snap_after.last_seq == snap.last_seq


def test_killed_at_random_moments_ends_exactly_as_an_uninterrupted_run(
    settings,
    synth_videos,
    reference_memory,
    stored_memory,
    reference_thumbnails,
    stored_thumbnails,
    cartmem_process,
    tmp_path: Path,
) -> None:
    # small fetches and frequent commits: many durable points to be killed between; few
    # evidence thumbnails allowed, so that their thinning happens between kills too
    settings = dataclasses.replace(
        settings, ingest_batch_records=3, commit_interval_s=0.2, evidence_max_frames=8
    )
    # enough work that a slow start (a cold machine) still leaves room for five kills
    sessions = {f"k-{i}": v for i, v in enumerate(synth_videos * 3)}
    for session_id, video in sessions.items():
        publish_video(settings, video, session_id, chunk_seconds=1.0)
    rng = random.Random(20261121)
    log = tmp_path / "workers.log"
    kills: list[tuple[int, int]] = []  # (stored offsets, closed sessions) at each kill
    done = progress(settings)
    for _ in range(10):
        proc = cartmem_process(settings, "ingest", "--until-idle", "5", log=log)
        # kill once this worker has committed some progress, at a random moment after
        deadline = time.monotonic() + 120
        while (
            progress(settings)[0] <= done[0] and proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is not None or progress(settings)[1] == len(sessions):
            break  # it finished, or has closed every session and only idles: nothing to cut
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = progress(settings)
        kills.append(done)
        if len(kills) >= 6:
            break
    final = cartmem_process(settings, "ingest", "--until-idle", "5", log=log)
    assert final.wait(timeout=240) == 0, log.read_text()[-3000:]
    # the kills landed while work remained: some sessions were still open each time
    assert len(kills) >= 5, f"only {len(kills)} kills landed before the work ran out: {kills}"
    assert all(closed < len(sessions) for _offsets, closed in kills), kills
    assert_closed_and_exact(settings, sessions, reference_memory, stored_memory)
    assert_thumbnails_exact(settings, sessions, reference_thumbnails, stored_thumbnails)
    assert dead_letters(settings) == []


def progress(settings: Settings) -> tuple[int, int]:
    """(sum of stored next offsets, sessions closed): what commits have made durable."""
    database = Database(settings)
    try:
        with database.session() as db:
            offsets = db.query(PartitionOffset).filter_by(consumer_group=settings.group).all()
            closed = db.query(ShoppingSession).filter_by(status="closed").count()
            return sum(o.next_offset or 0 for o in offsets), closed  # None: claimed, unsaved
    finally:
        database.dispose()


def test_poison_messages_become_dead_letters_and_others_complete(
    settings, synth_videos, reference_memory, stored_memory, tmp_path: Path
) -> None:
    settings = dataclasses.replace(
        settings,
        topic=make_topic(settings.kafka_bootstrap_servers, 1),
        max_message_bytes=400_000,
        max_frame_pixels=192 * 144,
    )
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, max_request_size=2_000_000
    )
    good = {"good-a": synth_videos[0], "good-b": synth_videos[1]}

    def send(key: bytes | None, headers, value: bytes) -> None:
        producer.send(settings.topic, key=key, value=value, headers=headers)

    def chunk_headers(seq: int) -> list[tuple[str, bytes]]:
        return contract.headers_for(
            MessageType.CHUNK, seq=seq, camera="c", t0=0.0, content_type="video/mp2t"
        )

    real_chunk = next(cut_chunks(synth_videos[2], chunk_seconds=3.0, max_bytes=900_000)).data
    big_video = tmp_path / "big.mp4"
    _write_big_video(big_video)
    big_chunk = next(cut_chunks(big_video, chunk_seconds=3.0, max_bytes=900_000)).data
    a_messages = list(session_messages(good["good-a"], "good-a", chunk_seconds=3.0))
    for m in a_messages[: len(a_messages) // 2]:
        send(m.key, m.headers, m.value)
    poison = [
        (None, chunk_headers(1), real_chunk, "no key"),
        (
            b"p-schema",
            [h for h in chunk_headers(1) if h[0] != "cartmem-schema"],
            real_chunk,
            "'cartmem-schema' header is missing",
        ),
        (
            b"p-type",
            [("cartmem-schema", b"1"), ("type", b"shelf_scan"), ("seq", b"1"), ("camera", b"c")],
            b"{}",
            "unknown",
        ),
        (
            b"p-seq",
            [*chunk_headers(1)[:2], ("seq", b"one"), *chunk_headers(1)[3:]],
            real_chunk,
            "not a non-negative integer",
        ),
        (b"p-junk", chunk_headers(1), b"\x00\x01garbage" * 500, "decod|no video|not readable"),
        (b"p-trunc", chunk_headers(1), real_chunk[: 188 * 3], "decod|corrupt|no decodable"),
        (b"p-big-frames", chunk_headers(1), big_chunk, "over the limit of 27648 pixels"),
        (b"p-oversize", chunk_headers(1), os.urandom(500_000), "over the 400000-byte limit"),
    ]
    for key, headers, value, _ in poison:
        send(key, headers, value)
    for m in a_messages[len(a_messages) // 2 :]:
        send(m.key, m.headers, m.value)
    for m in session_messages(good["good-b"], "good-b", chunk_seconds=3.0):
        send(m.key, m.headers, m.value)
    producer.flush()
    producer.close()

    stats = run_engine(settings)
    letters = dead_letters(settings)
    assert stats.dead_letters == len(poison) == len(letters)
    import re

    for letter, (key, _h, value, reason) in zip(letters, poison, strict=True):
        assert re.search(reason, letter.reason), (letter.reason, reason)
        assert letter.reason.endswith(".") and letter.size == len(value)
        assert letter.key == (key.decode() if key else None)
        assert letter.head == value[:64] and len(letter.sha256) == 64
    assert_closed_and_exact(settings, good, reference_memory, stored_memory)


def test_two_workers_share_partitions_and_one_takes_over(
    settings, synth_videos, reference_memory, stored_memory, cartmem_process, tmp_path: Path
) -> None:
    # session ids that land on both partitions (Kafka's default partitioner: murmur2 of the key)
    ids = [f"g-{i}" for i in range(40)]
    by_partition = {
        p: [s for s in ids if (murmur2(s.encode()) & 0x7FFFFFFF) % 2 == p] for p in (0, 1)
    }
    sessions = {
        by_partition[0][0]: synth_videos[0],
        by_partition[1][0]: synth_videos[1],
        by_partition[0][1]: synth_videos[2],
    }
    for session_id, video in sessions.items():
        publish_video(settings, video, session_id, chunk_seconds=2.0)
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = cartmem_process(settings, "ingest", "--until-idle", "60", log=log_a)
    b = cartmem_process(settings, "ingest", "--until-idle", "25", log=log_b)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if (
            all("assigned [(" in p.read_text() for p in (log_a, log_b) if p.exists())
            and log_b.exists()
            and log_a.exists()
        ):
            break
        time.sleep(0.5)
    else:
        tails = [
            f"worker {name}:\n" + (log.read_text()[-2000:] if log.exists() else "(no log)")
            for name, log in (("a", log_a), ("b", log_b))
        ]
        pytest.fail("the two workers never both held partitions:\n" + "\n".join(tails))
    time.sleep(2.0)
    a.send_signal(signal.SIGKILL)
    a.wait()
    assert b.wait(timeout=180) == 0, log_b.read_text()[-3000:]
    assert "revoked" in log_b.read_text() or log_b.read_text().count("assigned") >= 2
    assert_closed_and_exact(settings, sessions, reference_memory, stored_memory)


def test_chunks_from_kcat_are_ingested_like_ours(
    settings, synth_videos, reference_memory, stored_memory, kcat_produce, tmp_path: Path
) -> None:
    video = synth_videos[1]
    messages = [(m.headers, m.value) for m in session_messages(video, "kcat-1", chunk_seconds=3.0)]
    kcat_produce(settings.kafka_bootstrap_servers, settings.topic, "kcat-1", messages, tmp_path)
    stats = run_engine(settings)
    assert stats.dead_letters == 0
    assert_closed_and_exact(settings, {"kcat-1": video}, reference_memory, stored_memory)


def _write_big_video(path: Path) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10, options={"g": "10"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(
                np.full((240, 320, 3), i * 10, np.uint8), format="rgb24"
            )
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _ffmpeg_ts(ffmpeg: str, path: Path, source: str, *extra: str) -> bytes:
    """An MPEG-TS made by Debian's ffmpeg from a lavfi ``source``."""
    import subprocess

    args = [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", source]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra]
    subprocess.run([*args, "-f", "mpegts", str(path)], check=True, timeout=120)
    return path.read_bytes()


def test_messages_from_outside_never_stop_the_worker(
    settings, synth_videos, reference_memory, stored_memory, ffmpeg: str, tmp_path: Path
) -> None:
    """Every message that once stopped a partition for good, among two real sessions on the
    same partition: each ends as a dead letter, a recorded loss or a use, the worker returns,
    and both sessions end exactly as ingested alone."""
    import subprocess

    settings = dataclasses.replace(settings, topic=make_topic(settings.kafka_bootstrap_servers, 1))
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, max_request_size=2_000_000
    )
    good = {"out-a": synth_videos[0], "out-b": synth_videos[1]}
    a_messages = list(session_messages(good["out-a"], "out-a", chunk_seconds=3.0))
    real_chunk = a_messages[2].value

    def start() -> list[tuple[str, bytes]]:
        return contract.headers_for(MessageType.SESSION_START, seq=0, camera="c")

    def chunk(seq: int, t0: float = 0.0) -> list[tuple[str, bytes]]:
        return contract.headers_for(
            MessageType.CHUNK, seq=seq, camera="c", t0=t0, content_type="video/mp2t"
        )

    for w, h in ((320, 240), (160, 120)):
        _ffmpeg_ts(ffmpeg, tmp_path / f"{w}.ts", f"testsrc2=size={w}x{h}:rate=10:duration=1")
    # one stream whose frame size changes mid-chunk, as a camera that restarts its encoder
    (tmp_path / "halves.txt").write_text("file '320.ts'\nfile '160.ts'\n")
    concat = [ffmpeg, "-loglevel", "error", "-y", "-f", "concat", "-safe", "0"]
    concat += ["-i", str(tmp_path / "halves.txt"), "-c", "copy", "-f", "mpegts"]
    subprocess.run([*concat, str(tmp_path / "res.ts")], check=True, timeout=60)
    static_4k = _ffmpeg_ts(
        ffmpeg, tmp_path / "4k.ts", "color=c=gray:size=3840x2160:rate=30:duration=29", "-g", "900"
    )
    # (key, headers, value, the dead letter's reason, or "": used, not a dead letter)
    outside = [
        (b"o-int", start(), b'{"n": ' + b"9" * 5000 + b"}", "integer of 5000 digits"),
        (b"o-deep", start(), b"[" * 5000 + b"]" * 5000, "nests deeper"),
        (b"o-nan", start(), b'{"n": NaN}', "NaN"),
        (b"o-inf", start(), b'{"n": 1e999}', "too large to be finite"),
        (b"o-nul", start(), b'{"s": "\\u0000"}', "NUL character"),
        (b"o-sur", start(), b'{"s": "\\ud800"}', "unpaired UTF-16 surrogate"),
        (b"o-store", start(), json.dumps({"store_id": "s" * 200}).encode(), "store_id"),
        (b"o-sup2", [*start()[:2], ("seq", "²".encode()), *start()[3:]], b"{}", "ASCII digits"),
        (b"o\x00key", start(), b"{}", "session id"),
        (b"o-hdr", [h for h in start() if h[0] != "seq"] + [("x-note", b"a\x00b")], b"{}", "seq"),
        # video that must be used: a size change mid-chunk, 29 s of static 4K (309 KB)
        (b"o-res", chunk(0), (tmp_path / "res.ts").read_bytes(), ""),
        (b"o-4k", chunk(0), static_4k, ""),
        # what decodes of a truncated chunk is used, and the loss is on record
        (b"o-trunc", chunk(0), real_chunk[: len(real_chunk) * 3 // 5 + 7], ""),
        (b"out-a", chunk(900, t0=600.0), real_chunk, "past the end"),
        (b"out-a", chunk(901, t0=1e5), real_chunk, "past the end"),
        (b"out-a", chunk(904, t0=1e6), real_chunk, "more than a week"),
        (b"out-a", chunk(902, t0=1e13), real_chunk, "more than a week"),
        (b"out-a", chunk(903, t0=1e308), real_chunk, "more than a week"),
    ]
    sent = 0

    def send(key, headers, value) -> None:
        nonlocal sent
        producer.send(settings.topic, key=key, value=value, headers=headers)
        sent += 1

    for m in a_messages[:3]:
        send(m.key, m.headers, m.value)
    for key, headers, value, _ in outside:
        send(key, headers, value)
    for m in a_messages[3:]:
        send(m.key, m.headers, m.value)
    for m in session_messages(good["out-b"], "out-b", chunk_seconds=3.0):  # tracing middleware
        send(m.key, [*m.headers, ("x-trace", b"1"), ("x-trace", b"2")], m.value)
    producer.flush()
    producer.close()

    stats = run_engine(settings)  # returns: nothing escaped
    assert stats.applied == sent
    letters = {(letter.offset): letter for letter in dead_letters(settings)}
    for offset, (key, _headers, _value, reason) in enumerate(outside, start=3):
        if reason:
            assert offset in letters, (key, reason)
            assert reason in letters[offset].reason, (letters[offset].reason, reason)
        else:
            assert offset not in letters, (key, letters[offset].reason)
    assert_closed_and_exact(settings, good, reference_memory, stored_memory)
    for session_id in ("o-res", "o-4k"):
        _, snap = stored_memory(settings, session_id)
        assert snap.losses == () and snap.pending, session_id  # its frames wait for a clip
    _, truncated = stored_memory(settings, "o-trunc")
    assert "cut short" in truncated.losses[0]["reason"], truncated.losses
    database = Database(settings)
    try:
        with database.session() as db:
            stored = db.get(PartitionOffset, (settings.group, settings.topic, 0))
            assert stored is not None and stored.next_offset == sent
            nul_key = (
                db.query(DeadLetter)
                .filter(DeadLetter.key.startswith("o\\x00", autoescape=True))
                .one()
            )
            assert nul_key.key == "o\\x00key"  # escaped: PostgreSQL text holds no NUL
    finally:
        database.dispose()


def test_a_record_the_kafka_client_cannot_parse_is_a_dead_letter(
    settings, synth_videos, reference_memory, stored_memory, kcat: str, tmp_path: Path
) -> None:
    """kcat (librdkafka) sends a header name that is not UTF-8; kafka-python cannot parse
    that record's batch. It becomes a dead letter and the session around it is exact."""
    import subprocess

    settings = dataclasses.replace(settings, topic=make_topic(settings.kafka_bootstrap_servers, 1))
    video = synth_videos[2]
    messages = list(session_messages(video, "kc-1", chunk_seconds=3.0))
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)

    def send(batch) -> None:
        for m in batch:
            producer.send(settings.topic, key=m.key, value=m.value, headers=m.headers)
        producer.flush()

    send(messages[:3])
    bad = [kcat, "-P", "-b", settings.kafka_bootstrap_servers, "-t", settings.topic]
    bad += ["-k", "kc-1", "-H", b"\xff\xfe=1"]
    subprocess.run(bad, input=b"not a chunk", check=True, timeout=60, capture_output=True)
    send(messages[3:])
    producer.close()

    stats = run_engine(settings)
    (letter,) = dead_letters(settings)
    assert stats.dead_letters == 1 and letter.offset == 3
    assert "cannot read this record's batch" in letter.reason
    assert_closed_and_exact(settings, {"kc-1": video}, reference_memory, stored_memory)
