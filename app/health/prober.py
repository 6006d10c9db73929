"""The thread that runs a worker's probes every few seconds and keeps their results.

Checks run here, never on a request: ``/readyz`` answers from the latest results at once,
however often it is asked, and the database sees one ``SELECT 1`` per round whatever the
number of scrapers. Refreshers (the answer worker's queue depth) ride on the same round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from app.health.probes import Probe
from app.health.readiness import Readiness
from app.periodic import PeriodicTask

log = logging.getLogger("cartmem.health")

PROBE_INTERVAL_S = 5.0


class Prober:
    def __init__(
        self,
        readiness: Readiness,
        probes: Sequence[Probe],
        *,
        refreshers: Sequence[Callable[[], object]] = (),
        interval_s: float = PROBE_INTERVAL_S,
    ) -> None:
        self.readiness = readiness
        self.probes = list(probes)
        self.refreshers = list(refreshers)
        self._rounds = PeriodicTask(
            "probes", interval_s, self.tick, log, stop_timeout_s=2 * interval_s
        )

    def start(self) -> Prober:
        """The first round here and now, so that the first ``/readyz`` knows; then a thread."""
        self.tick()
        self._rounds.start()
        return self

    def stop(self) -> None:
        self._rounds.stop()

    def tick(self) -> None:
        """One round: every probe, then every refresher, then a look at the worker."""
        for probe in self.probes:
            try:
                problem = probe.check()
            except Exception as exc:  # a probe's own bug must not end the probing
                log.exception("the %s check failed", probe.name)
                problem = f"the {probe.name} check failed ({type(exc).__name__}: {exc})."
            self.readiness.record(probe.name, problem)
        for refresh in self.refreshers:
            try:
                refresh()
            except Exception as exc:  # e.g. the database is down: the probe says so already
                log.debug("refreshing metrics failed: %s", exc)
        self.readiness.sample()
