"""The local servers really start, serve a real client, listen on loopback only, and leave nothing.

No harness fixture is used on purpose: these tests are the harness's own tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import app
from app.devstack import KAFKA_VERSION, DevStack, KafkaBroker, PostgresServer, ensure_kafka_libs
from app.devstack._pg_binaries import (
    COPY_ROOT,
    OVERRIDE_ENV,
    Install,
    _copy_into,
    candidates,
    choose_bin_dir,
    copy_location,
    copy_problem,
    copy_source,
    ensure_copy,
    unreachable,
)
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


# PostgreSQL binaries the server's account can reach (issue 12): as root the server runs as an
# unprivileged account, and initdb checks its own binaries with access(), which ignores the
# capability that lets that account into root's 0700 home.

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="copies are root's; run as root")
_STRANGER = pwd.struct_passwd(("stranger", "x", os.getuid() + 4242, 4242, "", "/", "/bin/sh"))


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True)
    path.chmod(0o700)
    return path


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A directory every account can search (pytest's own tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="cartmem-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _fake_install(root: Path, *, share: bool = True) -> Path:
    """A tree shaped like a PostgreSQL install: bin/initdb, bin/postgres, lib/, share/."""
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    for name in ("initdb", "postgres"):
        (root / "bin" / name).write_text("#!/bin/sh\n")
        (root / "bin" / name).chmod(0o755)
    if share:
        (root / "share" / "postgresql").mkdir(parents=True)
        (root / "share" / "postgresql" / "postgres.bki").write_text("")
    return root


def test_a_private_ancestor_puts_binaries_out_of_another_accounts_reach(public_tmp: Path) -> None:
    install = _fake_install(public_tmp / "home" / "venv" / "pginstall")
    assert unreachable(install / "bin", _STRANGER) is None
    (public_tmp / "home").chmod(0o700)
    problem = unreachable(install / "bin", _STRANGER)
    assert problem is not None and f"{public_tmp / 'home'} (mode 700" in problem
    (public_tmp / "home").chmod(0o755)
    (install / "bin" / "initdb").chmod(0o711)  # runnable, but initdb wants to read it too
    assert "initdb (mode 711" in (unreachable(install / "bin", _STRANGER) or "")


def test_only_the_accounts_own_class_of_mode_bits_counts(public_tmp: Path) -> None:
    install = _fake_install(public_tmp / "pg")
    owner = pwd.struct_passwd(("me", "x", os.getuid(), os.getgid() + 4242, "", "/", "/bin/sh"))
    member = pwd.struct_passwd(("we", "x", os.getuid() + 4242, os.getgid(), "", "/", "/bin/sh"))
    (public_tmp / "pg").chmod(0o705)  # others may search, its group may not
    assert unreachable(install / "bin", owner) is None
    assert unreachable(install / "bin", _STRANGER) is None
    assert unreachable(install / "bin", member) is not None  # its group's bits rule it out
    (public_tmp / "pg").chmod(0o070)
    assert unreachable(install / "bin", member) is None
    assert unreachable(install / "bin", owner) is not None  # the owner's bits, not the group's


def test_candidates_are_override_then_pgserver_then_the_newest_system_install(
    tmp_path: Path,
) -> None:
    override = _fake_install(tmp_path / "mine")
    pgserver = _fake_install(tmp_path / "site" / "pgserver" / "pginstall")
    (tmp_path / "site" / "pgserver.libs").mkdir()
    system = tmp_path / "usr-lib-postgresql"
    for version in ("9", "15", "16"):
        _fake_install(system / version, share=False)  # Debian keeps share/ in /usr/share
    (system / "17").mkdir()  # a version's leftover without binaries

    found = candidates(str(override / "bin"), pgserver, system)
    assert [(c.origin, c.bin_dir) for c in found] == [
        (OVERRIDE_ENV, override / "bin"),
        ("pgserver", pgserver / "bin"),
        ("system PostgreSQL 16", system / "16" / "bin"),
    ]
    assert found[0].install == Install(override)
    assert found[1].install == Install(pgserver, (tmp_path / "site" / "pgserver.libs",))
    assert found[2].install is None  # not relocatable, so never copied
    assert [c.origin for c in candidates(None, None, system)] == ["system PostgreSQL 16"]
    assert candidates(None, None, tmp_path / "none") == []
    with pytest.raises(DevStackError, match=f"{OVERRIDE_ENV}=.* has no initdb or postgres"):
        candidates(str(tmp_path), pgserver, system)


def test_choice_prefers_reachable_then_a_copy_then_the_system(
    tmp_path: Path, public_tmp: Path
) -> None:
    private = _fake_install(_private(tmp_path / "home") / "pginstall")
    public = _fake_install(public_tmp / "pginstall")
    system = _fake_install(public_tmp / "usr-lib-postgresql" / "15", share=False)
    found = candidates(None, private, system.parent)
    copy_root = public_tmp / "cache"

    assert choose_bin_dir(None, found, copy_root) == private / "bin"  # not root: ours to run
    assert choose_bin_dir(_STRANGER, candidates(None, public, system.parent)) == public / "bin"
    if os.geteuid() == 0:
        copied = choose_bin_dir(_STRANGER, found, copy_root)
        assert copied == copy_location(Install(private), copy_root)[1]
        assert copy_source(copied.parent) == str(private)
    # where no copy can be made, the system's serves
    (public_tmp / "file").write_text("")
    assert choose_bin_dir(_STRANGER, found, public_tmp / "file" / "cache") == system / "bin"
    # a private tree that is not a whole install cannot be copied: the system's serves
    (private / "share" / "postgresql" / "postgres.bki").unlink()
    assert choose_bin_dir(_STRANGER, candidates(None, private, system.parent)) == system / "bin"


def test_an_unreachable_override_or_nothing_at_all_is_an_error(tmp_path: Path) -> None:
    system = _fake_install(_private(tmp_path / "home") / "postgresql" / "15", share=False)
    with pytest.raises(DevStackError, match=f"out of stranger's reach.*point {OVERRIDE_ENV}"):
        choose_bin_dir(_STRANGER, candidates(str(system / "bin"), None, tmp_path / "none"))
    with pytest.raises(DevStackError, match=r"pgserver is not installed.*apt-get install"):
        choose_bin_dir(_STRANGER, candidates(None, None, system.parent))
    with pytest.raises(DevStackError, match="no PostgreSQL binaries found"):
        choose_bin_dir(_STRANGER, [])


@needs_root
def test_a_copy_is_refused_once_anyone_but_root_could_have_changed_it(tmp_path: Path) -> None:
    install = Install(_fake_install(_private(tmp_path / "home") / "pginstall"))
    copy_root = tmp_path / "cache"
    bin_dir = ensure_copy(install, copy_root)
    copy = copy_location(install, copy_root)[0]
    assert copy_problem(copy, bin_dir) is None
    assert not any(p.name.startswith(".") for p in copy_root.iterdir())  # no staging left

    initdb = bin_dir / "initdb"
    os.chown(initdb, 4242, 0)
    with pytest.raises(DevStackError, match=r"owned by uid 4242, not root.*rm -rf"):
        ensure_copy(install, copy_root)
    os.chown(initdb, 0, 0)
    initdb.chmod(0o775)
    with pytest.raises(DevStackError, match="writable by group or others"):
        ensure_copy(install, copy_root)
    initdb.chmod(0o755)
    (bin_dir.parent / "lib" / "escape").symlink_to("/etc/passwd")
    with pytest.raises(DevStackError, match="links outside the copy"):
        ensure_copy(install, copy_root)
    (bin_dir.parent / "lib" / "escape").unlink()
    initdb.unlink()  # a copy someone pruned
    with pytest.raises(DevStackError, match="has no initdb"):
        ensure_copy(install, copy_root)


@needs_root
def test_processes_racing_to_copy_all_get_the_one_winning_copy(tmp_path: Path) -> None:
    install = Install(_fake_install(tmp_path / "site" / "pgserver" / "pginstall"))
    copy_root = tmp_path / "cache"
    with ThreadPoolExecutor(8) as pool:
        bin_dirs = set(pool.map(lambda _: ensure_copy(install, copy_root), range(8)))
    assert bin_dirs == {copy_location(install, copy_root)[1]}
    assert [p.name for p in copy_root.iterdir()] == [bin_dirs.pop().parent.name]
    # the loser of the final rename drops its own copy and keeps the winner's
    copy = copy_location(install, copy_root)[0]
    before = (copy / "bin" / "postgres").stat().st_ino
    _copy_into(install, copy)
    assert (copy / "bin" / "postgres").stat().st_ino == before
    assert [p.name for p in copy_root.iterdir()] == [copy.name]


def _serves_sql(workdir: Path) -> None:
    import psycopg2

    with PostgresServer.start(workdir) as server:
        conn = psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres")
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE t (n int); INSERT INTO t VALUES (41); SELECT n + 1 FROM t")
            assert cur.fetchone() == (42,)
        conn.close()
    _assert_gone(server.pid, server.port)


@pytest.mark.postgres
def test_postgres_starts_from_binaries_in_a_private_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pgserver's install inside two 0700 directories, as in root's ~/.cache/cartmem/venv-*."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        pytest.skip("pgserver is not installed for this Python (the system variant runs)")
    site = Path(spec.origin).parent.parent
    home = _private(_private(tmp_path / "root") / "venv")
    tree = home / "pgserver" / "pginstall"
    shutil.copytree(site / "pgserver" / "pginstall", tree, ignore=shutil.ignore_patterns("include"))
    if (site / "pgserver.libs").is_dir():  # its binaries load libpq from here, by RPATH
        shutil.copytree(site / "pgserver.libs", home / "pgserver.libs")
    monkeypatch.setenv(OVERRIDE_ENV, str(tree / "bin"))
    copies_before = set(COPY_ROOT.glob("postgres-*"))
    try:
        _serves_sql(home / "work")
        if os.geteuid() == 0:
            assert any(copy_source(c) == str(tree) for c in COPY_ROOT.glob("postgres-*"))
    finally:
        for copy in set(COPY_ROOT.glob("postgres-*")) - copies_before:
            if copy_source(copy) == str(tree):
                shutil.rmtree(copy)


@pytest.mark.postgres
def test_postgres_starts_from_the_system_install_with_its_data_in_a_private_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if (d / "initdb").is_file()]
    if not system:
        message = "no system PostgreSQL (`apt-get install postgresql`; `make test` installs it)"
        if os.environ.get("CI") or os.environ.get("CARTMEM_REQUIRE_TOOLS"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    monkeypatch.setenv(OVERRIDE_ENV, str(max(system, key=lambda d: int(d.parent.name))))
    _serves_sql(_private(_private(tmp_path / "root") / "home") / "work")
