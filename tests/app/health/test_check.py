"""The container healthcheck command asks the worker's own server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from app.health import HealthServer, Readiness
from app.health.check import health_url, main
from app.settings import Settings


def test_health_url_asks_loopback_when_listening_everywhere() -> None:
    assert health_url(Settings(metrics_port=9100, metrics_host="0.0.0.0"), "readyz") == (
        "http://127.0.0.1:9100/readyz"
    )
    assert health_url(Settings(metrics_port=9100, metrics_host="::1"), "healthz") == (
        "http://[::1]:9100/healthz"
    )


def test_exit_status_follows_readiness(monkeypatch) -> None:
    readiness = Readiness(stall_s=60.0)
    server = HealthServer("127.0.0.1", 0, readiness, CollectorRegistry()).start()
    try:
        monkeypatch.setenv("CARTMEM_METRICS_PORT", str(server.port))
        assert main(["healthz"]) == 0
        assert main(["readyz"]) == 1  # still starting
        readiness.watch(progress=lambda: 0, pending=lambda: False)
        assert main(["readyz"]) == 0
    finally:
        server.stop()
    assert main(["readyz"]) == 1  # nobody answers
