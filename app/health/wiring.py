"""A worker's health, started in one call: readiness, its prober and the HTTP server.

With ``CARTMEM_METRICS_PORT`` unset (0) nothing starts: no thread, no port, no checks.
The server starts before the model loads, so ``/healthz`` answers (and ``/readyz`` says
it is still starting) during a long load instead of the port being closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from app.health.prober import PROBE_INTERVAL_S, Prober
from app.health.probes import Probe
from app.health.readiness import Readiness
from app.health.server import HealthServer
from app.settings import Settings


@dataclass
class WorkerHealth:
    readiness: Readiness
    prober: Prober | None = None
    server: HealthServer | None = None

    def watch(self, progress: Callable[[], int], pending: Callable[[], bool]) -> None:
        """The model is loaded and the worker runs (see ``Readiness.watch``)."""
        self.readiness.watch(progress, pending)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.prober is not None:
            self.prober.stop()


def start_health(
    settings: Settings,
    registry: CollectorRegistry,
    probes: Sequence[Probe],
    *,
    refreshers: Sequence[Callable[[], object]] = (),
    interval_s: float = PROBE_INTERVAL_S,
) -> WorkerHealth:
    readiness = Readiness(
        stall_s=settings.stall_s,
        expected=[p.name for p in probes],
        stale_after_s=3 * interval_s,
    )
    if not settings.metrics_port:
        return WorkerHealth(readiness)
    server = HealthServer(settings.metrics_host, settings.metrics_port, readiness, registry)
    prober = Prober(readiness, probes, refreshers=refreshers, interval_s=interval_s).start()
    return WorkerHealth(readiness, prober, server.start())
