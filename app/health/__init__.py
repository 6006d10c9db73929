"""Health of the workers: ``/healthz``, ``/readyz`` and ``/metrics`` on CARTMEM_METRICS_PORT."""

from app.health.prober import PROBE_INTERVAL_S, Prober
from app.health.probes import BrokerProbe, DatabaseProbe, Probe
from app.health.readiness import Readiness, ReadyState
from app.health.server import HealthServer
from app.health.wiring import WorkerHealth, start_health

__all__ = [
    "PROBE_INTERVAL_S",
    "BrokerProbe",
    "DatabaseProbe",
    "HealthServer",
    "Probe",
    "Prober",
    "Readiness",
    "ReadyState",
    "WorkerHealth",
    "start_health",
]
