"""A throwaway PostgreSQL server on 127.0.0.1 for tests and `cartmem dev up`.

We run ``initdb`` and ``postgres`` ourselves rather than through pgserver's server management:
that one listens on a unix socket only, and we want a TCP URL any client can use.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Self

from app.devstack._pg_binaries import choose_bin_dir
from app.devstack._ports import LOOPBACK, free_ports
from app.devstack._process import (
    ServerExitedError,
    ServerHandle,
    ServerProcess,
    progress,
    wait_ready,
)
from app.errors import DevStackError

_START_ATTEMPTS = 3
_BIND_RACE = re.compile(r"could not bind|Address already in use|could not create any TCP/IP")
# Bits in /proc/self/status CapBnd.
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2
# Servers run as an unprivileged account when we are root, preferring the distribution's own.
_SERVER_ACCOUNTS = ("postgres", "nobody")
# Durability is worthless for a server whose data is thrown away, and costs time in tests.
_SPEED_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    """Command prefix that drops root, since PostgreSQL refuses to run as root.

    The account gets one ambient capability to read and traverse directories, so it can reach
    work directories under root's private home (pytest's tmp dirs are 0700 too) without us
    loosening any permission on disk. It owns only its data directory. The capability does not
    help with the binaries, which check themselves with ``access()``: ``choose_bin_dir`` picks
    ones the account reaches by mode bits alone.
    """
    if os.geteuid() != 0:
        return [], None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise DevStackError(
            "PostgreSQL cannot run as root and `setpriv` is missing to drop privileges; "
            "run `apt-get install util-linux` or run as a normal user"
        )
    account = None
    for name in _SERVER_ACCOUNTS:
        try:
            account = pwd.getpwnam(name)
            break
        except KeyError:
            continue
    if account is None:
        raise DevStackError(
            "PostgreSQL cannot run as root and neither a `postgres` nor a `nobody` account "
            "exists; create one with `useradd --system postgres`"
        )
    bounding = int(_proc_status_field("CapBnd"), 16)
    if bounding & (1 << _CAP_DAC_READ_SEARCH):
        cap = "dac_read_search"
    elif bounding & (1 << _CAP_DAC_OVERRIDE):
        cap = "dac_override"
    else:
        raise DevStackError(
            "PostgreSQL cannot run as root and this root lacks CAP_DAC_READ_SEARCH to let an "
            "unprivileged account reach the files; run the tests as a normal user"
        )
    prefix = [
        setpriv,
        f"--reuid={account.pw_uid}",
        f"--regid={account.pw_gid}",
        "--clear-groups",
        f"--inh-caps=+{cap}",
        f"--ambient-caps=+{cap}",
        "--",
    ]
    return prefix, account


def _proc_status_field(name: str) -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return "0"


def _initdb(bin_dir: Path, data_dir: Path, run_as: list[str], workdir: Path) -> None:
    log_path = workdir / "initdb.log"
    argv = [
        *run_as,
        str(bin_dir / "initdb"),
        f"--pgdata={data_dir}",
        "--username=postgres",
        "--auth=trust",  # local throwaway server, reachable from 127.0.0.1 only
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
        "--no-instructions",
    ]
    with log_path.open("wb") as log:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-10:]
        raise DevStackError(
            f"initdb failed with exit code {result.returncode}; see {log_path}:\n" + "\n".join(tail)
        )


def _connect(port: int, timeout_s: int = 2) -> Any:
    import psycopg2  # imported late: nothing connects or loads drivers at import time

    return psycopg2.connect(
        host=LOOPBACK, port=port, user="postgres", dbname="postgres", connect_timeout=timeout_s
    )


def _accepts_connections(port: int) -> bool:
    import psycopg2

    try:
        _connect(port).close()
    except psycopg2.OperationalError:
        return False
    return True


def _server_version(port: int) -> str:
    conn = _connect(port)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version()")
            return str(cur.fetchone()[0])
    finally:
        conn.close()


def _server_argv(run_as: list[str], bin_dir: Path, data_dir: Path, port: int) -> list[str]:
    argv = [*run_as, str(bin_dir / "postgres"), "-D", str(data_dir)]
    settings = [
        f"listen_addresses={LOOPBACK}",
        f"port={port}",
        f"unix_socket_directories={data_dir}",  # not /var/run/postgresql: not ours
        *_SPEED_SETTINGS,
    ]
    for setting in settings:
        argv += ["-c", setting]
    return argv


@dataclass
class PostgresServer(ServerHandle):
    """A running PostgreSQL listening only on 127.0.0.1, with trust auth for user postgres."""

    workdir: Path
    port: int
    version: str
    process: ServerProcess = field(repr=False)
    # fast shutdown: SIGINT disconnects clients, SIGTERM would wait for them
    stop_signal = signal.SIGINT

    @classmethod
    def start(cls, workdir: Path, *, ready_timeout: float = 30.0) -> Self:
        """Create an empty cluster in ``workdir/pgdata`` and start a server on a free port.

        Any earlier ``pgdata`` in ``workdir`` is deleted first: each start is a clean database.
        The server runs in its own session, so it outlives the caller until ``stop()``.
        """
        began = time.monotonic()
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        run_as, account = _run_as()
        bin_dir = choose_bin_dir(account)  # ones `account` can run, whatever ~ allows
        data_dir = workdir / "pgdata"
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(mode=0o700)
        if account is not None:
            os.chown(data_dir, account.pw_uid, account.pw_gid)
        progress(f"initialising PostgreSQL data in {data_dir} ({bin_dir})")
        _initdb(bin_dir, data_dir, run_as, workdir)
        log_path = workdir / "postgres.log"
        for attempt in range(1, _START_ATTEMPTS + 1):
            (port,) = free_ports(1)
            progress(f"starting PostgreSQL on {LOOPBACK}:{port}")
            argv = _server_argv(run_as, bin_dir, data_dir, port)
            process = ServerProcess.spawn(argv, log_path, cwd=workdir)
            try:
                wait_ready(
                    process,
                    partial(_accepts_connections, port),
                    what="PostgreSQL",
                    logs=(log_path,),
                    timeout=ready_timeout,
                )
                version = _server_version(port)
            except ServerExitedError as exc:
                process.stop(signal.SIGKILL, 5.0)
                if attempt < _START_ATTEMPTS and _BIND_RACE.search(exc.log_text):
                    progress(f"port {port} was taken before PostgreSQL bound it; retrying")
                    continue
                raise
            except BaseException:
                process.stop(signal.SIGKILL, 5.0)
                raise
            break
        server = cls(workdir, port, version, process)
        progress(
            f"{version.split(' on ')[0]} ready at {server.url} ({time.monotonic() - began:.1f} s)"
        )
        return server

    def start_again(self, *, ready_timeout: float = 30.0) -> None:
        """Start the server after ``stop()`` on the same data and port, as a database that
        went away and came back (the tests of the workers' readiness do this)."""
        run_as, account = _run_as()
        data_dir = self.workdir / "pgdata"
        argv = _server_argv(run_as, choose_bin_dir(account), data_dir, self.port)
        log_path = self.workdir / "postgres.log"
        self.process = ServerProcess.spawn(argv, log_path, cwd=self.workdir)
        try:
            wait_ready(
                self.process,
                partial(_accepts_connections, self.port),
                what="PostgreSQL",
                logs=(log_path,),
                timeout=ready_timeout,
            )
        except BaseException:
            self.process.stop(signal.SIGKILL, 5.0)
            raise

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database as the ``postgres`` superuser."""
        return f"postgresql+psycopg2://postgres@{LOOPBACK}:{self.port}/postgres"

    def to_state(self) -> dict[str, Any]:
        """JSON-able description that ``from_state`` turns back into a handle, in any process."""
        return {
            "kind": "postgres",
            "workdir": str(self.workdir),
            "port": self.port,
            "version": self.version,
            **self.process.to_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        if state.get("kind") != "postgres":
            raise DevStackError(f"state {dict(state)!r} does not describe a PostgreSQL server")
        return cls(
            Path(state["workdir"]),
            int(state["port"]),
            str(state["version"]),
            ServerProcess.from_state(state),
        )
