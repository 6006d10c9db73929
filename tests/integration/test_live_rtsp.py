"""A live camera through a real RTSP server (GStreamer's, from Debian) into Kafka and ingest.

The server plays a synthetic session's H.264 file in real time, as a camera streams it;
`publish_live` cuts it as it arrives. Compared with publishing the same file, and with the
server killed and started again in the middle of a session.
"""

from __future__ import annotations

import io
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest
from kafka import KafkaConsumer

from app.db import Database
from app.publish import publish_video
from app.publish_live import LiveOptions, publish_live
from app.settings import Settings
from storage import SessionMemory, ShoppingSession
from tests.conftest import missing_tool

from .conftest import ingest_until_idle

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
SERVER = Path(__file__).resolve().parents[1] / "support" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_PACKAGES = (
    "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad python3-gi"
)


def require_rtsp_server() -> None:
    """GStreamer's RTSP server and its Python bindings, or a skip (a failure under make test)."""
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); gi.require_version('Gst', '1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "assert all(Gst.ElementFactory.find(e) for e in ('qtdemux', 'h264parse', 'rtph264pay'))"
    )
    ok = os.path.exists(SYSTEM_PYTHON) and (
        subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=60).returncode
        == 0
    )
    if not ok:
        missing_tool(f"GStreamer's RTSP server is not installed (apt-get install {RTSP_PACKAGES})")


class RtspServer:
    """The server as a process of its own, which a test may kill and start again."""

    def __init__(self, video: Path, log: Path) -> None:
        self.video, self.log = video, log
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        out = self.log.open("a")
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(self.video), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == "ready", f"the RTSP server did not start: {self.log.read_text()}"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def rtsp_server(tmp_path: Path) -> Iterator[Callable[[Path], RtspServer]]:
    require_rtsp_server()
    started: list[RtspServer] = []

    def serve(video: Path) -> RtspServer:
        server = RtspServer(video, tmp_path / "rtsp.log")
        server.start()
        started.append(server)
        return server

    yield serve
    for server in started:
        server.kill()


@pytest.fixture
def settings(kafka_pg_settings: Settings) -> Settings:
    return kafka_pg_settings


def session_row(settings: Settings, session_id: str) -> tuple[ShoppingSession, SessionMemory]:
    database = Database(settings)
    try:
        with database.session() as db:
            session = db.get(ShoppingSession, session_id)
            memory = db.get(SessionMemory, session_id)
            assert session is not None and memory is not None, session_id
            db.expunge_all()
            return session, memory
    finally:
        database.dispose()


def messages(settings: Settings) -> list[tuple[str, dict[str, bytes], bytes]]:
    """(key, headers, value) of every message on the topic."""
    consumer = KafkaConsumer(
        settings.topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        return [(m.key.decode(), dict(m.headers), m.value) for m in consumer]
    finally:
        consumer.close()


def frames_in(chunk: bytes) -> int:
    with av.open(io.BytesIO(chunk)) as container:
        return sum(1 for p in container.demux(video=0) if p.size)


@pytest.fixture
def camera_video(synth_videos: list[Path], tmp_path: Path, ffmpeg: str) -> Path:
    """A synthetic session as a camera encodes it: H.264 with a key frame every second
    (made by ffmpeg). A client joining a live stream starts at its next key frame, so a
    camera's key-frame interval is what joining costs."""
    out = tmp_path / "camera.mp4"
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-i",
            str(synth_videos[0]),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "10",
            "-keyint_min",
            "10",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            str(out),
        ],
        check=True,
        timeout=120,
    )
    return out


def test_a_live_camera_gives_the_frames_its_file_gives(settings, rtsp_server, camera_video) -> None:
    server = rtsp_server(camera_video)
    report = publish_live(
        settings,
        server.url,
        "live-1",
        LiveOptions(camera="cam-a", chunk_seconds=2.0, reconnect=False),
    )
    assert report.ended_by == "stream end" and report.outages == [] and report.chunks >= 10
    publish_video(settings, camera_video, "file-1", chunk_seconds=2.0)
    stats = ingest_until_idle(settings)
    assert stats.sessions_closed == 2 and stats.dead_letters == 0

    live, live_memory = session_row(settings, "live-1")
    _, file_memory = session_row(settings, "file-1")
    assert live.status == "closed" and live.losses == []
    assert live_memory.frames_seen >= 0.95 * file_memory.frames_seen
    assert live.end_info["ended_by"] == "stream end"
    seqs = [int(h["seq"]) for key, h, _ in messages(settings) if key == "live-1"]
    assert seqs == list(range(len(seqs)))  # session_start, chunks, session_end


def test_a_camera_that_drops_is_reopened_and_the_gap_recorded(
    settings, rtsp_server, camera_video
) -> None:
    server = rtsp_server(camera_video)  # 30 s: longer than the session below
    result: dict[str, object] = {}

    def run() -> None:
        result["report"] = publish_live(
            settings,
            server.url,
            "live-2",
            LiveOptions(camera="cam-a", chunk_seconds=2.0, until_s=16.0),
        )

    publisher = threading.Thread(target=run)
    publisher.start()
    time.sleep(7.0)  # ~5 s of session time: connecting takes a moment
    server.kill()
    time.sleep(3.0)
    server.start()
    publisher.join(timeout=60)
    report = result["report"]

    (outage,) = report.outages
    down_s = outage["to"] - outage["from"]
    assert 3.0 <= down_s <= 9.0, outage  # 3 s down, plus the retry delays
    assert report.ended_by == "until" and report.seconds >= 15.0
    sent = [(h, value) for key, h, value in messages(settings) if key == "live-2"]
    assert [int(h["seq"]) for h, _ in sent] == list(range(len(sent)))  # runs on across it
    t0s = [float(h["t0"]) for h, _ in sent if "t0" in h]
    assert t0s == sorted(t0s) and any(b - a > 3.0 for a, b in itertools.pairwise(t0s))
    # only the outage is missing: the chunks hold the camera's frames for the rest
    frames = sum(frames_in(value) for h, value in sent if "t0" in h)
    assert frames / 10.0 >= 0.9 * (report.seconds - down_s)  # the video runs at 10 fps

    stats = ingest_until_idle(settings)
    assert stats.sessions_closed == 1 and stats.dead_letters == 0
    session, _ = session_row(settings, "live-2")
    (gap,) = [loss for loss in session.losses if "no video from" in loss["reason"]]
    assert abs(gap["to_s"] - outage["to"]) < 0.5 and abs(gap["from_s"] - outage["from"]) < 0.5
    assert session.end_info["outages"] == report.outages
