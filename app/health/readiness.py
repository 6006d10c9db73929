"""Whether a worker should be sent work: the answer of ``/readyz``.

A worker is ready when its model is loaded and it runs (``watch``), every probe's latest
check passed and is recent, and it is not stalled: work has not been waiting for
``stall_s`` without the worker moving on once. Probes report from their own thread
(``app.health.prober``) and the HTTP server reads from its own; nothing here ever asks the
worker's thread anything, so a slow check cannot hold up the work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ReadyState:
    ready: bool
    problems: tuple[str, ...]  # one sentence each; empty when ready


class Readiness:
    def __init__(
        self,
        *,
        stall_s: float,
        expected: Iterable[str] = (),
        stale_after_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``expected``: the probes that must have passed; a result older than
        ``stale_after_s`` counts as a failure (a check that hangs, e.g. on a lost network)."""
        self.stall_s = stall_s
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._checks: dict[str, tuple[float, str | None] | None] = dict.fromkeys(expected)
        self._progress: Callable[[], int] | None = None
        self._pending: Callable[[], bool] = lambda: False
        self._last_count = 0
        self._moved_at = self._started
        self._pending_since: float | None = None

    def watch(self, progress: Callable[[], int], pending: Callable[[], bool]) -> None:
        """The model is loaded and the worker runs: from now on it is judged by ``progress``
        (a count that grows whenever it moves on) while ``pending`` says work waits."""
        with self._lock:
            self._progress, self._pending = progress, pending
            self._last_count = progress()
            self._moved_at = self._clock()
            self._pending_since = None

    def record(self, probe: str, problem: str | None) -> None:
        """The latest result of ``probe``: None when it passed, else what is wrong."""
        with self._lock:
            self._checks[probe] = (self._clock(), problem)

    def sample(self) -> None:
        """Look at the worker's progress and waiting work now (the prober does, each round)."""
        with self._lock:
            self._sample(self._clock())

    def state(self) -> ReadyState:
        with self._lock:
            now = self._clock()
            self._sample(now)
            problems = [*self._probe_problems(now), *self._worker_problems(now)]
        return ReadyState(not problems, tuple(problems))

    # caller holds the lock ---------------------------------------------------------------
    def _sample(self, now: float) -> None:
        if self._progress is None:
            return
        count = self._progress()
        if count != self._last_count:
            self._last_count, self._moved_at = count, now
        if not self._pending():
            self._pending_since = None
        elif self._pending_since is None:
            self._pending_since = now

    def _probe_problems(self, now: float) -> list[str]:
        problems = []
        for name, result in self._checks.items():
            if result is None:
                problems.append(f"the {name} check has not run yet.")
                continue
            at, problem = result
            if problem is not None:
                problems.append(problem)
            elif now - at > self.stale_after_s:
                problems.append(f"the {name} check has not finished for {now - at:.0f} s.")
        return problems

    def _worker_problems(self, now: float) -> list[str]:
        if self._progress is None:
            return [
                f"the worker is still starting (loading the model, {now - self._started:.0f} s)."
            ]
        if self._pending_since is None:
            return []
        # work that just arrived after a quiet hour is not a stall: count from the later
        stuck_s = now - max(self._moved_at, self._pending_since)
        if stuck_s < self.stall_s:
            return []
        return [
            f"stalled: work has been waiting and the worker has not moved on for {stuck_s:.0f} s "
            f"(CARTMEM_STALL_S is {self.stall_s:g})."
        ]
