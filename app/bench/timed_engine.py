"""The ingest engine with clocks on its main-thread phases, for the capacity model.

Nothing in the engine changes: the subclass times the methods the loop calls (applying a
record, one sampler call, one commit) and wraps the decode pool's tasks to add up their
CPU time. The clocks cost microseconds against phases of milliseconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import numpy as np

from app.ingest import IngestEngine
from app.ingest.prepare import Prepared
from app.ingest.session import LiveSession

P = ParamSpec("P")
R = TypeVar("R")


class _TimedPool(ThreadPoolExecutor):
    """A thread pool that adds up the CPU seconds its tasks took."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers)
        self.cpu_s = 0.0
        self.tasks = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        def timed() -> R:
            began = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.cpu_s += time.thread_time() - began
                    self.tasks += 1

        return super().submit(timed)


@dataclass
class Timings:
    """Main-thread wall seconds by phase, with the counts the capacity model fits on."""

    apply_s: float = 0.0
    records: int = 0
    writes: list[tuple[int, int, float]] = field(default_factory=list)  # sessions, frames, s
    commits: list[tuple[int, int, float]] = field(default_factory=list)  # snapshots, bytes, s
    thumbnail_bytes: int = 0  # of the commits' bytes, the evidence thumbnails'

    def to_json(self) -> dict[str, Any]:
        return {
            "apply_s": round(self.apply_s, 4),
            "records": self.records,
            "write_s": round(sum(w[2] for w in self.writes), 4),
            "write_calls": [[b, f, round(s, 5)] for b, f, s in self.writes],
            "commit_s": round(sum(c[2] for c in self.commits), 4),
            "commit_rounds": [[n, b, round(s, 5)] for n, b, s in self.commits],
            "thumbnail_bytes": self.thumbnail_bytes,
        }


class TimedEngine(IngestEngine):
    """``IngestEngine`` whose phases are timed into ``timings``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timings = Timings()

    def _decode_pool(self, threads: int) -> ThreadPoolExecutor:
        self.pool_cpu = _TimedPool(threads)
        return self.pool_cpu

    def _apply(self, prepared: Prepared) -> None:
        began = time.perf_counter()
        super()._apply(prepared)
        self.timings.apply_s += time.perf_counter() - began
        self.timings.records += 1

    def _write(
        self, sessions: list[LiveSession], clips: list[np.ndarray], *, replay: bool = False
    ) -> None:
        began = time.perf_counter()
        super()._write(sessions, clips, replay=replay)
        frames = sum(len(c) for c in clips)
        self.timings.writes.append((len(sessions), frames, time.perf_counter() - began))

    def commit(self) -> None:
        dirty = [s for s in self.sessions.values() if s.dirty]
        thumbnails = sum(len(t.data) for s in dirty for t in s.thumbnails.added())
        wrote = self.stats.commit_bytes
        began = time.perf_counter()
        super().commit()
        took = time.perf_counter() - began
        self.timings.commits.append((len(dirty), self.stats.commit_bytes - wrote, took))
        self.timings.thumbnail_bytes += thumbnails
