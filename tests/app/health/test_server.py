"""The health server: liveness, readiness as 200/503 with the reasons, metrics, on one port."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from app.errors import SettingsError
from app.health import HealthServer, Readiness
from app.health.check import ask


@pytest.fixture
def served() -> Iterator[tuple[HealthServer, Readiness, Counter]]:
    registry = CollectorRegistry()
    counter = Counter("cartmem_test_things", "Things", registry=registry)
    readiness = Readiness(stall_s=60.0, expected=["database"])
    server = HealthServer("127.0.0.1", 0, readiness, registry).start()
    try:
        yield server, readiness, counter
    finally:
        server.stop()


def get(server: HealthServer, path: str) -> tuple[int, str]:
    return ask(f"http://127.0.0.1:{server.port}{path}")


def test_healthz_readyz_and_metrics(served) -> None:
    server, readiness, counter = served
    assert get(server, "/healthz") == (200, "ok\n")
    status, body = get(server, "/readyz")
    assert status == 503 and json.loads(body)["ready"] is False
    readiness.watch(progress=lambda: 0, pending=lambda: False)
    readiness.record("database", "cannot reach the database at postgresql://x/y.")
    status, body = get(server, "/readyz")
    assert status == 503
    assert json.loads(body)["problems"] == ["cannot reach the database at postgresql://x/y."]
    readiness.record("database", None)
    assert get(server, "/readyz") == (200, '{"ready": true, "problems": []}\n')
    counter.inc(3)
    status, body = get(server, "/metrics")
    assert status == 200 and "cartmem_test_things_total 3.0" in body
    assert get(server, "/nothing")[0] == 404


def test_a_taken_port_is_one_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SettingsError, match="CARTMEM_METRICS_PORT"):
            HealthServer("127.0.0.1", port, Readiness(stall_s=1.0), CollectorRegistry())
