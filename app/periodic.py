"""Work a worker does on the side, on a clock: a daemon thread that runs a task every
``interval_s`` until stopped, so the task (a POST that may time out, a purge) never holds
up the worker's own loop. A failure is logged and the next round comes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from app.errors import CartmemError


class PeriodicTask:
    def __init__(
        self,
        name: str,
        interval_s: float,
        task: Callable[[], object],
        log: logging.Logger,
        *,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.task = task
        self.log = log
        self.stop_timeout_s = stop_timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cartmem-{name}", daemon=True)

    def start(self) -> PeriodicTask:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the round in flight, if any."""
        self._stop.set()
        self._thread.join(timeout=self.stop_timeout_s)

    def run_round(self) -> None:
        """Run the task once, now and on the caller's thread; a failure is logged."""
        try:
            self.task()
        except CartmemError as exc:  # e.g. the database is down: say so, next round
            self.log.error("%s: %s", self.name, exc)
        except Exception:
            self.log.exception("%s failed; trying again in %.0f s", self.name, self.interval_s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.run_round()
