"""The local servers really start, serve a real client, listen on loopback only, and leave nothing.

No harness fixture is used on purpose: these tests are the harness's own tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import app
from app.devstack import KAFKA_VERSION, DevStack, KafkaBroker, PostgresServer, ensure_kafka_libs
from app.devstack._ports import port_is_free
from app.devstack._process import ServerExitedError, ServerProcess, _read_stat, wait_ready
from app.devstack.kafka import _complete_libs
from app.errors import DevStackError


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table, width in (("tcp", 4), ("tcp6", 16)):
        lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            cols = line.split()
            address, port = cols[1].split(":")
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if width == 4:
                    host = socket.inet_ntop(socket.AF_INET, raw[::-1])
                else:  # /proc prints each 32-bit word in host (little-endian) order
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    host = socket.inet_ntop(socket.AF_INET6, words)
                found.add((host, int(port, 16)))
    return found


def _assert_gone(pid: int, *ports: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    for port in ports:
        assert port_is_free(port), f"something still listens on 127.0.0.1:{port}"


@pytest.mark.postgres
def test_postgres_serves_sql_on_loopback_and_stops_cleanly(tmp_path: Path) -> None:
    import psycopg2

    server = PostgresServer.start(tmp_path / "pg")
    try:
        assert server.url == f"postgresql+psycopg2://postgres@127.0.0.1:{server.port}/postgres"
        assert server.version.startswith("PostgreSQL ")
        conn = psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres")
        with conn, conn.cursor() as cur:
            cur.execute("SELECT version()")
            assert cur.fetchone()[0] == server.version
        conn.close()
        assert _listening(server.pid) == {("127.0.0.1", server.port)}
        assert list((tmp_path / "pg" / "pgdata").glob(".s.PGSQL.*"))  # socket in the workdir
    finally:
        server.stop()
    assert not server.is_running()
    _assert_gone(server.pid, server.port)
    server.stop()  # idempotent


@pytest.mark.postgres
def test_postgres_reattaches_from_state_in_json(tmp_path: Path) -> None:
    with PostgresServer.start(tmp_path / "pg") as server:
        again = PostgresServer.from_state(json.loads(json.dumps(server.to_state())))
        assert again == server
        assert again.is_running()
        again.stop()
        assert not server.is_running()
    _assert_gone(server.pid, server.port)


@pytest.mark.kafka
def test_kafka_broker_round_trips_a_message_with_headers(tmp_path: Path) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    broker = KafkaBroker.start(tmp_path / "kafka")
    try:
        assert broker.version == KAFKA_VERSION
        assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
        assert _listening(broker.pid) == {
            ("127.0.0.1", broker.port),
            ("127.0.0.1", broker.controller_port),
        }
        topic = f"devstack-{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        headers = [("cartmem-schema", b"1"), ("type", b"chunk"), ("seq", b"0")]
        producer.send(topic, key=b"session-1", value=b"bytes", headers=headers).get(timeout=30)
        producer.close()
        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap_servers,
            enable_auto_commit=False,
            consumer_timeout_ms=15000,
        )
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        record = next(iter(consumer))
        consumer.close()
        assert (record.key, record.value, record.headers) == (b"session-1", b"bytes", headers)
    finally:
        broker.stop()
    _assert_gone(broker.pid, broker.port, broker.controller_port)
    broker.stop()


def _down_in_another_process(state_dir: Path) -> None:
    """What `cartmem dev down` does: re-attach from the state file in a fresh interpreter."""
    code = "import sys; from app.devstack import DevStack; DevStack.load(sys.argv[1]).down()"
    root = str(Path(app.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code, str(state_dir)], env=env, check=True, timeout=60)


@pytest.mark.kafka
@pytest.mark.postgres
def test_devstack_up_load_down_leaves_nothing_running(tmp_path: Path) -> None:
    state_dir = tmp_path / "dev"
    stack = DevStack.up(state_dir)
    try:
        assert DevStack.up(state_dir) == stack  # the running pair, not a second one
        again = DevStack.load(state_dir)
        assert again == stack
        assert again.env() == {
            "CARTMEM_DATABASE_URL": stack.postgres.url,
            "CARTMEM_KAFKA_BOOTSTRAP_SERVERS": stack.kafka.bootstrap_servers,
        }
        assert (state_dir / "kafka" / "server.log").is_file()
        assert (state_dir / "postgres" / "postgres.log").is_file()
        _down_in_another_process(state_dir)
        assert not (stack.kafka.is_running() or stack.postgres.is_running())
    finally:
        stack.down()
    _assert_gone(stack.kafka.pid, stack.kafka.port, stack.kafka.controller_port)
    _assert_gone(stack.postgres.pid, stack.postgres.port)
    assert not (state_dir / "devstack.json").exists()
    with pytest.raises(DevStackError, match="cartmem dev up"):
        DevStack.load(state_dir)


@pytest.mark.kafka
@pytest.mark.postgres
def test_devstack_up_replaces_a_half_dead_stack(tmp_path: Path) -> None:
    first = DevStack.up(tmp_path / "dev")
    try:
        first.postgres.stop()
        second = DevStack.up(tmp_path / "dev")
        try:
            assert second.is_running()
            assert not first.kafka.is_running()
            assert second.kafka.pid != first.kafka.pid
        finally:
            second.down()
    finally:
        first.down()
    _assert_gone(first.kafka.pid)
    _assert_gone(second.kafka.pid)
    _assert_gone(second.postgres.pid)


def test_dead_server_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    process = ServerProcess.spawn(["sh", "-c", "echo port taken; exit 3"], log)
    with pytest.raises(ServerExitedError, match="port taken"):
        wait_ready(process, lambda: False, what="toy server", logs=[log], timeout=10)


def test_stop_kills_a_server_that_ignores_the_signal_and_its_children(tmp_path: Path) -> None:
    script = "trap '' TERM; sleep 60 & sleep 60 & echo started; wait"
    log = tmp_path / "out.log"
    process = ServerProcess.spawn(["sh", "-c", script], log)
    wait_ready(process, lambda: "started" in log.read_text(), what="toy", logs=[log], timeout=10)
    children = [pid for pid, _ in process._family().items()]
    assert len(children) == 2
    process.stop(signal.SIGTERM, timeout=0.3)
    _assert_gone(process.pid)
    for pid in children:  # re-parented to init, which may not have reaped them yet
        assert _read_stat(pid) is None or _read_stat(pid).state == "Z"


def test_only_a_marked_complete_cache_is_reused(tmp_path: Path) -> None:
    version_dir = tmp_path / f"kafka-{KAFKA_VERSION}"
    (version_dir / "libs").mkdir(parents=True)
    (version_dir / "libs" / "a.jar").write_bytes(b"")
    assert _complete_libs(version_dir) is None  # copied but never marked: a failed download
    (version_dir / "complete.json").write_text(json.dumps({"jars": ["a.jar", "b.jar"]}))
    assert _complete_libs(version_dir) is None  # a jar went missing since
    (version_dir / "libs" / "b.jar").write_bytes(b"")
    assert _complete_libs(version_dir) == version_dir / "libs"
    assert ensure_kafka_libs(KAFKA_VERSION, cache_dir=tmp_path) == version_dir / "libs"


@pytest.mark.kafka
def test_a_failed_download_is_not_left_as_a_complete_cache(tmp_path: Path) -> None:
    with pytest.raises(DevStackError, match=r"Maven could not download Kafka 0\.0\.1"):
        ensure_kafka_libs("0.0.1", cache_dir=tmp_path)
    assert _complete_libs(tmp_path / "kafka-0.0.1") is None
    assert not (tmp_path / "kafka-0.0.1" / "libs").exists()


def test_missing_tools_name_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(DevStackError, match="apt-get install openjdk"):
        ensure_kafka_libs(KAFKA_VERSION, cache_dir=tmp_path)
    java = tmp_path / "java"
    java.symlink_to(sys.executable)  # any executable named java gets past the first check
    with pytest.raises(DevStackError, match="apt-get install maven"):
        ensure_kafka_libs(KAFKA_VERSION, cache_dir=tmp_path)
    assert not (tmp_path / f"kafka-{KAFKA_VERSION}" / "complete.json").exists()
