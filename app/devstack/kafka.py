"""A single-node Apache Kafka broker (KRaft, combined mode) on 127.0.0.1, run with plain java.

No Docker and no Kafka distribution: the broker's jars come from Maven Central through
``kafka-libs-pom.xml`` and are cached per version, so a warm start is one JVM launch.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from app.devstack._ports import LOOPBACK, free_ports
from app.devstack._process import (
    ServerExitedError,
    ServerHandle,
    ServerProcess,
    file_lock,
    progress,
    wait_ready,
)
from app.errors import DevStackError

KAFKA_VERSION = "4.3.1"
"""Newest 4.x line that kafka-python 3.0 is tested against (4.4.0 exists on Maven Central)."""

_POM = Path(__file__).with_name("kafka-libs-pom.xml")
_MARKER = "complete.json"
_START_ATTEMPTS = 3
_BIND_RACE = re.compile(r"BindException|Address already in use|failed to bind")
_STARTED = "Kafka Server started"
_JVM_OPTS = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-Djava.awt.headless=true",
    # Plain IPv4 sockets: otherwise Java listens on ::ffff:127.0.0.1 through an IPv6 socket.
    "-Djava.net.preferIPv4Stack=true",
)


def _cache_root(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if env := os.environ.get("CARTMEM_CACHE_DIR"):
        return Path(env)
    return Path.home() / ".cache" / "cartmem"


def _tool(name: str, install_hint: str) -> str:
    if name == "java" and (home := os.environ.get("JAVA_HOME")):
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
    path = shutil.which(name)
    if path is None:
        raise DevStackError(f"`{name}` was not found on PATH; {install_hint}")
    return path


def _java() -> str:
    return _tool("java", "install a Java 17+ runtime (`apt-get install openjdk-17-jre-headless`)")


def _complete_libs(version_dir: Path) -> Path | None:
    """The libs folder if a finished download left its marker and every jar it listed."""
    libs = version_dir / "libs"
    try:
        jars = json.loads((version_dir / _MARKER).read_text())["jars"]
    except (OSError, ValueError, KeyError):
        return None
    if jars and all((libs / jar).is_file() for jar in jars):
        return libs
    return None


def ensure_kafka_libs(version: str = KAFKA_VERSION, cache_dir: Path | None = None) -> Path:
    """Return a folder holding the broker's full runtime classpath, downloading it once.

    The cache is ``<cache_dir or $CARTMEM_CACHE_DIR or ~/.cache/cartmem>/kafka-<version>/libs``.
    Maven copies into a scratch folder that is renamed into place, and the marker is written
    last, so an interrupted or failed download is never taken for a complete one.
    """
    version_dir = _cache_root(cache_dir) / f"kafka-{version}"
    if (libs := _complete_libs(version_dir)) is not None:
        return libs
    _java()  # checked first: jars are no use without it
    mvn = _tool("mvn", "install Maven (`apt-get install maven`) to download Kafka's jars")
    with file_lock(version_dir.parent / f"kafka-{version}.lock"):
        if (libs := _complete_libs(version_dir)) is not None:  # another process finished
            return libs
        version_dir.mkdir(parents=True, exist_ok=True)
        for stale in version_dir.glob("download-*"):  # left by a killed run; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        progress(
            f"downloading Kafka {version} jars with Maven into {version_dir} "
            "(first run only; can take a few minutes)"
        )
        began = time.monotonic()
        with tempfile.TemporaryDirectory(dir=version_dir, prefix="download-") as scratch:
            scratch_path = Path(scratch)
            shutil.copyfile(_POM, scratch_path / "pom.xml")
            argv = [
                mvn,
                "-B",
                "-q",
                "-Dstyle.color=never",
                "-f",
                str(scratch_path / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={scratch_path / 'libs'}",
                f"-Dkafka.version={version}",
            ]
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            jars = sorted(p.name for p in (scratch_path / "libs").glob("*.jar"))
            if result.returncode != 0 or not any(j.startswith("kafka_2.13-") for j in jars):
                raise DevStackError(
                    f"Maven could not download Kafka {version} (exit {result.returncode}); "
                    "check that the version exists and Maven Central is reachable:\n"
                    + _maven_errors(result.stdout + result.stderr)
                )
            (version_dir / _MARKER).unlink(missing_ok=True)
            shutil.rmtree(version_dir / "libs", ignore_errors=True)
            (scratch_path / "libs").rename(version_dir / "libs")
        marker = {"version": version, "jars": jars}
        (version_dir / _MARKER).write_text(json.dumps(marker, indent=1))
        progress(f"downloaded {len(jars)} jars in {time.monotonic() - began:.0f} s")
        return version_dir / "libs"


def _maven_errors(output: str) -> str:
    """Maven's first few meaningful error lines, without colour codes or its help footer."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip() for line in output.splitlines()]
    errors = [line for line in lines if line.startswith("[ERROR]") and line != "[ERROR]"]
    return "\n".join(errors[:1] or [line for line in lines if line][-5:])


def _jar_version(libs: Path) -> str:
    """The version the broker reports, read from the kafka-clients jar it runs with."""
    for jar in libs.glob("kafka-clients-*.jar"):
        with zipfile.ZipFile(jar) as archive:
            props = archive.read("kafka/kafka-version.properties").decode()
        for line in props.splitlines():
            if line.startswith("version="):
                return line.removeprefix("version=").strip()
    raise DevStackError(f"no kafka-clients jar in {libs}; delete that folder to download again")


def _cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding, as `kafka-storage random-uuid` makes.

    Like Kafka's own generator, never one starting with '-': the format tool's argument
    parser would take it for an option.
    """
    while (cluster_id := base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="))[0] == "-":
        pass
    return cluster_id


@dataclass(frozen=True)
class KafkaTls:
    """A server certificate for an extra ``SSL`` listener (no client certificates asked).

    ``keystore`` is a PKCS12 file holding the broker's key and certificate chain, protected
    by ``password`` (the key's password too).
    """

    keystore: Path
    password: str


def _server_properties(
    port: int, controller_port: int, data_dir: Path, ssl: tuple[int, KafkaTls] | None = None
) -> str:
    """``ssl``: the port and certificate of an extra SSL listener."""
    advertised = f"PLAINTEXT://{LOOPBACK}:{port}"
    protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if ssl is not None:
        advertised += f",SSL://{LOOPBACK}:{ssl[0]}"
        protocols += ",SSL:SSL"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{LOOPBACK}:{controller_port}",
        "listeners": f"{advertised},CONTROLLER://{LOOPBACK}:{controller_port}",
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": protocols,
        "log.dirs": str(data_dir),
        # One node: every internal topic must make do with one replica.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Tests join a group and expect partitions at once, not after the 3 s default delay.
        "group.initial.rebalance.delay.ms": "0",
        # A topic with a tiny retention loses its old segments within seconds, not after the
        # 5-minute default check (the test of what ingest does when retention outran it).
        "log.retention.check.interval.ms": "1000",
    }
    if ssl is not None:
        tls = ssl[1]
        props |= {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(Path(tls.keystore).resolve()),
            "ssl.keystore.password": tls.password,
            "ssl.key.password": tls.password,
            "ssl.client.auth": "none",
        }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def _log4j2_properties(log_path: Path) -> str:
    return (
        "status = warn\n"
        # Keep logging through the broker's own shutdown hook, so its last lines are kept.
        "shutdownHook = disable\n"
        "appender.file.type = File\n"
        "appender.file.name = file\n"
        f"appender.file.fileName = {log_path}\n"
        "appender.file.append = false\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = file\n"
    )


def _format_storage(java: str, libs: Path, workdir: Path, log4j: Path) -> None:
    argv = [
        java,
        # A one-second tool: the quick JIT tier and the simplest collector start fastest.
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{libs}/*",
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        _cluster_id(),
        "--config",
        str(workdir / "server.properties"),
    ]
    try:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired as exc:
        raise DevStackError(f"formatting Kafka storage in {workdir} hung for 120 s") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise DevStackError(f"formatting Kafka storage in {workdir} failed:\n{tail}")


def _log_says_started(log_path: Path) -> bool:
    try:
        return _STARTED in log_path.read_text(errors="replace")
    except OSError:
        return False


def _metadata_ok(bootstrap_servers: str) -> bool:
    """A real client's metadata request: the log line alone does not prove clients get in."""
    from kafka import KafkaAdminClient  # imported late: nothing connects at import time
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            client_id="cartmem-devstack-probe",
            request_timeout_ms=5000,
        )
    except (KafkaError, OSError):
        return False
    try:
        admin.list_topics()
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
    return True


@dataclass
class KafkaBroker(ServerHandle):
    """A running single-node broker listening only on 127.0.0.1."""

    workdir: Path
    port: int
    controller_port: int
    version: str
    process: ServerProcess = field(repr=False)
    ssl_port: int | None = None

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        version: str = KAFKA_VERSION,
        ready_timeout: float = 90.0,
        tls: KafkaTls | None = None,
    ) -> Self:
        """Format fresh storage in ``workdir/data`` and start a broker on free ports.

        Ready means the log says "Kafka Server started" and a kafka-python metadata request
        succeeds. The broker runs in its own session, so it outlives the caller until
        ``stop()``; its log is ``workdir/server.log`` (JVM output in ``workdir/stdout.log``).
        With ``tls``, the broker also has an ``SSL`` listener (``ssl_bootstrap_servers``)
        besides its PLAINTEXT one, which the readiness check and the controller keep using.
        """
        began = time.monotonic()
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        libs = ensure_kafka_libs(version)
        java = _java()
        real_version = _jar_version(libs)
        log_path = workdir / "server.log"
        log4j = workdir / "log4j2.properties"
        log4j.write_text(_log4j2_properties(log_path))
        data_dir = workdir / "data"
        for attempt in range(1, _START_ATTEMPTS + 1):
            port, controller_port, *extra = free_ports(3 if tls else 2)
            ssl_port = extra[0] if tls else None
            ssl = (extra[0], tls) if tls else None
            shutil.rmtree(data_dir, ignore_errors=True)
            (workdir / "server.properties").write_text(
                _server_properties(port, controller_port, data_dir, ssl)
            )
            progress(f"formatting Kafka {real_version} storage in {data_dir}")
            _format_storage(java, libs, workdir, log4j)
            progress(f"starting Kafka broker on {LOOPBACK}:{port}")
            argv = [
                java,
                *_JVM_OPTS,
                f"-Dlog4j2.configurationFile={log4j}",
                "-cp",
                f"{libs}/*",
                "kafka.Kafka",
                str(workdir / "server.properties"),
            ]
            log_path.unlink(missing_ok=True)
            process = ServerProcess.spawn(argv, workdir / "stdout.log", cwd=workdir)
            bootstrap = f"{LOOPBACK}:{port}"

            def ready(b: str = bootstrap) -> bool:
                return _log_says_started(log_path) and _metadata_ok(b)

            try:
                wait_ready(
                    process,
                    ready,
                    what="Kafka broker",
                    logs=(log_path, workdir / "stdout.log"),
                    timeout=ready_timeout,
                )
            except ServerExitedError as exc:
                process.stop(signal.SIGKILL, 5.0)
                if attempt < _START_ATTEMPTS and _BIND_RACE.search(exc.log_text):
                    progress(f"port {port} or {controller_port} was taken; retrying")
                    continue
                raise
            except BaseException:
                process.stop(signal.SIGKILL, 5.0)
                raise
            break
        broker = cls(workdir, port, controller_port, real_version, process, ssl_port)
        progress(
            f"Kafka {real_version} ready at {broker.bootstrap_servers} "
            f"({time.monotonic() - began:.1f} s)"
        )
        return broker

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def ssl_bootstrap_servers(self) -> str:
        """The ``SSL`` listener, for a broker started with ``tls``."""
        if self.ssl_port is None:
            raise DevStackError("this Kafka broker was started without an SSL listener")
        return f"{LOOPBACK}:{self.ssl_port}"

    def to_state(self) -> dict[str, Any]:
        """JSON-able description that ``from_state`` turns back into a handle, in any process."""
        state = {
            "kind": "kafka",
            "workdir": str(self.workdir),
            "port": self.port,
            "controller_port": self.controller_port,
            "version": self.version,
            **self.process.to_state(),
        }
        if self.ssl_port is not None:
            state["ssl_port"] = self.ssl_port
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        if state.get("kind") != "kafka":
            raise DevStackError(f"state {dict(state)!r} does not describe a Kafka broker")
        return cls(
            Path(state["workdir"]),
            int(state["port"]),
            int(state["controller_port"]),
            str(state["version"]),
            ServerProcess.from_state(state),
            None if state.get("ssl_port") is None else int(state["ssl_port"]),
        )
