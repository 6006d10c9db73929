"""Spawn, watch and stop server processes, also from a process that did not start them.

A server is found again by its pid plus its start time (``/proc/<pid>/stat`` field 22), so a
recycled pid is never mistaken for our server and never signalled. Linux only, like the
servers' use here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from app.errors import DevStackError

_KILL_WAIT_S = 5.0
_POLL_S = 0.05


class ServerExitedError(DevStackError):
    """The server process ended while we waited for it to become ready."""

    def __init__(self, message: str, log_text: str) -> None:
        super().__init__(message)
        self.log_text = log_text  # the whole log, for callers that retry on known causes


def progress(message: str) -> None:
    """One line per phase on stderr, so a CI log shows what a slow start is doing."""
    print(f"[cartmem devstack] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two processes never download or start twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_log(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log, preceded by its first few ERROR/FATAL lines.

    A dying JVM logs its whole shutdown after the error that killed it, so the tail alone
    would hide the cause.
    """
    text = _read_log(path)
    if not text:
        return f"(nothing in {path})"
    all_lines = text.splitlines()
    errors = [line for line in all_lines[:-lines] if re.search(r"\b(ERROR|FATAL|PANIC)\b", line)]
    head = [*errors[:5], "..."] if errors else []
    return "\n".join([*head, *all_lines[-lines:]])


@dataclass(frozen=True)
class _Stat:
    state: str
    ppid: int
    pgrp: int
    start_ticks: int


def _read_stat(pid: int) -> _Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may itself contain spaces or ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return _Stat(fields[0], int(fields[1]), int(fields[2]), int(fields[19]))


def _all_stats() -> dict[int, _Stat]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _read_stat(int(entry))) is not None:
            stats[int(entry)] = stat
    return stats


def _alive(pid: int, start_ticks: int) -> bool:
    stat = _read_stat(pid)
    return stat is not None and stat.state not in ("Z", "X") and stat.start_ticks == start_ticks


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


@dataclass
class ServerProcess:
    """A server we spawned as leader of its own session, so it outlives a detached caller."""

    pid: int
    start_ticks: int
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ServerProcess:
        """Start ``argv`` with stdout and stderr in ``log_path`` and no terminal or stdin."""
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else dict(env),
                start_new_session=True,
            )
        stat = _read_stat(popen.pid)
        return cls(popen.pid, stat.start_ticks if stat else -1, popen)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ServerProcess:
        return cls(int(state["pid"]), int(state["start_ticks"]))

    def to_state(self) -> dict[str, int]:
        return {"pid": self.pid, "start_ticks": self.start_ticks}

    def is_running(self) -> bool:
        """True until the server has exited and, if it is our child, been reaped.

        A reaped child is really gone: its pid answers ``kill(pid, 0)`` no more. A JVM that
        has exited shows as a zombie while its last threads unwind, and only then can be
        reaped, so for our own children only ``waitpid`` decides.
        """
        if self._popen is not None:
            return self._popen.poll() is None
        stat = _read_stat(self.pid)
        if stat is None or stat.start_ticks != self.start_ticks:
            return False
        try:
            reaped, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not our child: its parent (or init) reaps it
            return stat.state not in ("Z", "X")
        return reaped == 0

    def stop(self, signum: int, timeout: float) -> None:
        """Send ``signum``, wait up to ``timeout`` s, then SIGKILL the server and its family.

        The family (the process group plus every descendant) is noted before signalling:
        once the leader is gone its children are re-parented and could not be found.
        Idempotent: a server that is already gone is only reaped.
        """
        family: dict[int, int] = {}
        if self.is_running():
            family = self._family()
            _kill(self.pid, signum)
            if not self._wait_gone(timeout):
                progress(f"pid {self.pid} ignored signal {signum} for {timeout:.0f} s; killing it")
                family |= self._family()
                _kill(self.pid, signal.SIGKILL)
        for pid, ticks in family.items():
            if _alive(pid, ticks):
                _kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + _KILL_WAIT_S
        while self.is_running() or any(_alive(pid, ticks) for pid, ticks in family.items()):
            if time.monotonic() >= deadline:
                raise DevStackError(f"process {self.pid} or a child survived SIGKILL; kill it")
            time.sleep(_POLL_S)

    def _family(self) -> dict[int, int]:
        stats = _all_stats()
        members = {pid for pid, stat in stats.items() if stat.pgrp == self.pid}
        frontier = [self.pid]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, stat in stats.items() if stat.ppid == parent]
            members.update(children)
            frontier.extend(children)
        members.discard(self.pid)
        return {pid: stats[pid].start_ticks for pid in members}

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.is_running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True


def _logs_report(logs: Sequence[Path]) -> str:
    return "\n".join(f"--- {path}\n{log_tail(path)}" for path in logs if _read_log(path))


def wait_ready(
    process: ServerProcess,
    probe: Callable[[], bool],
    *,
    what: str,
    logs: Sequence[Path],
    timeout: float,
) -> None:
    """Poll ``probe`` until it returns True; fail fast, with the logs' ends, if the server dies.

    ``logs`` lists every file the server writes to, main log first: a JVM that cannot even
    start (wrong Java version, bad classpath) only writes to its stdout.
    """
    deadline = time.monotonic() + timeout
    while True:
        if not process.is_running():
            raise ServerExitedError(
                f"{what} exited while starting; its logs say why:\n{_logs_report(logs)}",
                "\n".join(_read_log(path) for path in logs),
            )
        if probe():
            return
        if time.monotonic() >= deadline:
            raise DevStackError(
                f"{what} was not ready after {timeout:.0f} s; see {logs[0]} "
                f"(a slow machine may need a longer ready_timeout):\n{_logs_report(logs)}"
            )
        time.sleep(0.1)


class ServerHandle:
    """What both local servers share: a process, how to stop it, and use as a context manager.

    Subclasses are dataclasses with a ``process`` field and set ``stop_signal``.
    """

    process: ServerProcess
    stop_signal = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.is_running()

    def stop(self, timeout: float = 20.0) -> None:
        """Send ``stop_signal``; SIGKILL the process group after ``timeout``. Safe to call twice."""
        self.process.stop(self.stop_signal, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
