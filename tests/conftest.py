"""Shared fixtures: one real Kafka broker and one real PostgreSQL per test session.

``CARTMEM_TEST_KAFKA`` (bootstrap servers) and ``CARTMEM_TEST_DATABASE_URL`` point the
tests at servers you run yourself; when unset, the harness starts its own on 127.0.0.1
(app.devstack) and stops them at the end. Each PostgreSQL test gets a database of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa

from app.settings import Settings

_SERVICE_LINES: list[str] = []


def _announce(config: pytest.Config, line: str) -> None:
    """Say which real server the tests use, now and again in the summary."""
    _SERVICE_LINES.append(line)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\n[cartmem] {line}")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _SERVICE_LINES:
        terminalreporter.section("real services used")
        for line in _SERVICE_LINES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Bootstrap servers of a real broker: the given one, or one started for this run."""
    given = os.environ.get("CARTMEM_TEST_KAFKA")
    if given:
        _announce(request.config, f"Kafka: using CARTMEM_TEST_KAFKA={given}")
        yield given
        return
    from app.devstack import KafkaBroker
    from app.errors import DevStackError

    try:
        broker = KafkaBroker.start(tmp_path_factory.mktemp("kafka"))
    except DevStackError as exc:
        # e.g. no Java or Maven: the error names what to install
        pytest.fail(
            f"could not start the test Kafka broker ({exc}); install what it names, "
            "or set CARTMEM_TEST_KAFKA=host:port to use a broker of your own.",
            pytrace=False,
        )
    _announce(
        request.config, f"Kafka: started broker {broker.version} at {broker.bootstrap_servers}"
    )
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_admin_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a real PostgreSQL with rights to create databases."""
    given = os.environ.get("CARTMEM_TEST_DATABASE_URL")
    if given:
        url = Settings(database_url=given).database_url
        _announce(
            request.config, f"PostgreSQL: using CARTMEM_TEST_DATABASE_URL, {_server_version(url)}"
        )
        yield url
        return
    from app.devstack import PostgresServer
    from app.errors import DevStackError

    try:
        server = PostgresServer.start(tmp_path_factory.mktemp("postgres"))
    except DevStackError as exc:
        pytest.fail(f"could not start the test PostgreSQL: {exc}", pytrace=False)
    _announce(request.config, f"PostgreSQL: started at {server.url}, {_server_version(server.url)}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def make_pg_database(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """Factory: a new empty database on the test server per call, dropped after the test."""
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def make() -> str:
        name = f"cartmem_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return (
            sa.make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
        )

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_settings(make_pg_database: Callable[[], str], tmp_path: Path) -> Settings:
    """Settings pointing at a fresh, empty PostgreSQL database."""
    return Settings(data_dir=tmp_path / "data", database_url=make_pg_database())


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """The embedded default: a SQLite file under a fresh data dir."""
    return Settings(data_dir=tmp_path / "data")


def _server_version(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.scalar(sa.text("SELECT version()")))
    finally:
        engine.dispose()


# ---------------------------------------------------------------- processes
def run_cartmem(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``cartmem ARGS`` (``python -m app``) run to its end in a process of its own, with only
    ``env``'s CARTMEM_ variables; its output captured."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CARTMEM_")} | env
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=Path(__file__).resolve().parents[1],
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def cartmem_process():
    """Function: run ``cartmem ARGS`` in its own process with ``settings``, output to ``log``."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]

    def start(settings: Settings, *args: str, log: Path) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARTMEM_")}
        env |= settings.to_env()
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "app", *args], cwd=root, env=env, stdout=out, stderr=out
            )

    return start


def require_tool(name: str, package: str) -> str:
    """Path of an outside program the tests compare against (Debian's kcat, ffmpeg).

    ``make test`` installs them where apt works and sets ``CARTMEM_REQUIRE_TOOLS``, so under
    it (and in CI) a missing tool fails the test instead of skipping it.
    """
    import shutil

    path = shutil.which(name)
    if path is None:
        missing_tool(
            f"{name} is not installed (apt-get install {package}); "
            "`make test` installs it where apt works"
        )
    return path


def missing_tool(message: str) -> NoReturn:
    """Skip a test whose outside tool is missing; under ``make test`` (which installs the
    tools and sets ``CARTMEM_REQUIRE_TOOLS``) and in CI, fail it instead."""
    if os.environ.get("CI") or os.environ.get("CARTMEM_REQUIRE_TOOLS"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def ffmpeg() -> str:
    """Path of Debian's ffmpeg, for media made by a tool that is not ours."""
    return require_tool("ffmpeg", "ffmpeg")


@pytest.fixture
def kcat() -> str:
    """Path of Debian's kcat, an independent (librdkafka) Kafka client."""
    return require_tool("kcat", "kcat")


@pytest.fixture
def kcat_produce():
    """Function: send messages with Debian's kcat, an independent Kafka client."""
    import subprocess

    kcat = require_tool("kcat", "kcat")

    def produce(bootstrap: str, topic: str, key: str, messages, workdir: Path) -> None:
        for i, (headers, value) in enumerate(messages):
            payload = workdir / f"kcat-{key}-{i}.bin"
            payload.write_bytes(value)
            args = [kcat, "-P", "-b", bootstrap, "-t", topic, "-k", key]
            for name, raw in headers:
                args += ["-H", f"{name}={raw.decode()}"]
            subprocess.run([*args, str(payload)], check=True, timeout=60, capture_output=True)

    return produce


# ---------------------------------------------------------------- model and video fixtures
@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-preset checkpoint with fixed random weights (the real loading code reads it)."""
    import torch

    from model import LongVMNet, ModelConfig

    torch.manual_seed(1234)
    directory = tmp_path_factory.mktemp("checkpoint") / "tiny"
    LongVMNet(ModelConfig.preset("tiny")).save(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_pair_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    """A model pair (``model.pair``): ``tiny_checkpoint`` leads, a second tiny-preset
    checkpoint of other fixed random weights and a smaller memory (128 slots) names."""
    import torch

    from model import LongVMNet, ModelConfig
    from model.pair_config import write_pair_checkpoint

    torch.manual_seed(4321)
    root = tmp_path_factory.mktemp("pair")
    partner = root / "partner"
    LongVMNet(ModelConfig.preset("tiny", memory_size=128)).save(partner)
    write_pair_checkpoint(root / "pair", "tiny-pair", tiny_checkpoint, [partner])
    return root / "pair"


@pytest.fixture(scope="session")
def synth_videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three short synthetic shopping sessions (real H.264 files), made once per run."""
    from model.synth import generate_dataset

    root = tmp_path_factory.mktemp("synth") / "ds"
    generate_dataset(root, videos=3, minutes=0.5, seed=11)
    return sorted((root / "videos").glob("*.mp4"))


@pytest.fixture(scope="session")
def frames_at_fps():
    """Function: (video path, fps) -> the whole file's frames resampled to ``fps``."""
    return decode_at_fps


def decode_at_fps(path: Path, fps: float, max_side: int | None = None):
    """The whole file decoded and resampled to ``fps``: the frames ingest must see.

    Frames go through ingest's own conversion (``frame_to_rgb``: display rotation, and
    scaled like the first frame so that the longer side is at most ``max_side``); the
    synthetic videos are smaller than any ``max_side`` ingest uses, so they stay
    bit-identical either way.
    """
    import av
    import numpy as np

    from app.video import Timeline, frame_to_rgb, scaled_size

    timeline = Timeline(fps)
    images, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):  # converted one by one: a few MB at a time
            if not images:
                start, size = frame.pts, scaled_size(frame.width, frame.height, max_side)
            times.append(round((frame.pts - start) * stream.time_base * 1_000_000))
            images.append(frame_to_rgb(frame, size=size))
        duration = round(1_000_000 / stream.average_rate)
    pushed = timeline.push(np.stack(images), np.array(times), duration)
    return np.concatenate([pushed, timeline.flush()])


@pytest.fixture(scope="session")
def side_by_side_memory(tiny_checkpoint: Path):
    """Function: (left video, right video) -> the memory ``LongVMNet.populate`` writes for
    two cameras' videos side by side, as ingest combines them (the shorter holds its last
    frame to the end of the longer)."""
    import numpy as np

    from model import LongVMNet

    net = LongVMNet.load(tiny_checkpoint)

    def reference(left: Path, right: Path):
        videos = [decode_at_fps(v, net.cfg.fps) for v in (left, right)]
        steps = max(len(v) for v in videos)
        held = [np.concatenate([v, np.repeat(v[-1:], steps - len(v), 0)]) for v in videos]
        return net.populate(np.concatenate(held, axis=2)[None])  # (1, T, H, 2W, 3)

    return reference


@pytest.fixture(scope="session")
def reference_memory(tiny_checkpoint: Path):
    """Function: the memory ``LongVMNet.populate`` writes for a whole video file."""
    from model import LongVMNet

    net = LongVMNet.load(tiny_checkpoint)
    cache: dict[Path, object] = {}

    def reference(path: Path):
        if path not in cache:
            cache[path] = net.populate(decode_at_fps(path, net.cfg.fps)[None])
        return cache[path]

    return reference


def stored_snapshot(settings: Settings, session_id: str):
    """The session's ingest state as the database holds it (``SessionSnapshot``)."""
    from app.db import Database
    from storage.ingest_state import load_session

    database = Database(settings)
    try:
        with database.session() as db:
            snap = load_session(db, session_id)
    finally:
        database.dispose()
    assert snap is not None, f"no session {session_id} stored"
    return snap


@pytest.fixture
def stored_memory():
    """Function: (settings, session id) -> (Memory, session snapshot) as the database holds it;
    the memory is None while none is stored (ingest stores it every few clips and at the end)."""
    from app.ingest.session import memory_arrays
    from model import Memory

    def read(settings: Settings, session_id: str):
        snap = stored_snapshot(settings, session_id)
        arrays = memory_arrays(snap)
        return (Memory.from_arrays(arrays) if arrays else None), snap

    return read


@pytest.fixture(scope="session")
def cart_cells_of():
    """Function: (settings, session id) -> (the cart band's cells stored beside the session's
    memory, or None; the reference: those of the whole file's frames at the memory's
    rate, video path given)."""

    from app.array_blobs import array_of
    from app.video.cart_band import ARRAY_NAME, kept_cells

    def stored(settings: Settings, session_id: str):
        snap = stored_snapshot(settings, session_id)
        blobs = [b for b in snap.band if b.name == ARRAY_NAME]
        if not blobs:
            return None
        return array_of(blobs[0])

    def reference(path: Path, fps: float, top: float):
        return kept_cells(decode_at_fps(path, fps), top)

    stored.reference = reference  # type: ignore[attr-defined]
    return stored


@pytest.fixture(scope="session")
def reference_thumbnails():
    """Function: (video path, settings, fps) -> {time_us: JPEG bytes}: the evidence
    thumbnails an uninterrupted ingest of the whole file keeps."""
    from app.ingest.thumbnails import ThumbnailKeeper, ThumbnailPolicy

    def reference(path: Path, settings: Settings, fps: float) -> dict[int, bytes]:
        keeper = ThumbnailKeeper(ThumbnailPolicy.of(settings, fps), fps)
        keeper.take(0, decode_at_fps(path, fps))
        return {t.time_us: t.data for t in keeper.added()}

    return reference


@pytest.fixture
def stored_thumbnails():
    """Function: (settings, session id) -> {time_us: JPEG bytes} as the database holds them."""
    from app.db import Database
    from storage.evidence import load_thumbnails, thumbnail_index

    def read(settings: Settings, session_id: str) -> dict[int, bytes]:
        database = Database(settings)
        try:
            with database.session() as db:
                times = [t for t, _size in thumbnail_index(db, session_id)]
                return {t.time_us: t.data for t in load_thumbnails(db, session_id, times)}
        finally:
            database.dispose()

    return read


@pytest.fixture(autouse=True)
def _torch_threads_restored() -> Iterator[None]:
    """A test that changes torch's thread count (``--threads``) must not leak it: CPU
    results are bit-identical only for one thread count, and references are cached."""
    import torch

    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)
