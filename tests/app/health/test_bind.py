"""The health and metrics server listens where CARTMEM_METRICS_HOST says, and nowhere else."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from app.health import start_health
from app.health.check import ask
from app.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    with socket.socket() as client:
        client.settimeout(2)
        return client.connect_ex((host, port)) == 0


def outside_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address = str(udp.getsockname()[0])
    return None if address.startswith("127.") else address


@pytest.fixture
def serve() -> Iterator[Callable[..., int]]:
    """Function: settings -> the port of a worker's health server started with them."""
    started = []

    def start(**settings: object) -> int:
        port = free_port()
        health = start_health(
            Settings(metrics_port=port, **settings), CollectorRegistry(), [], interval_s=60
        )
        started.append(health)
        return port

    yield start
    for health in started:
        health.stop()


def test_by_default_only_this_machine_reaches_it(serve) -> None:
    assert Settings().metrics_host == "127.0.0.1"
    port = serve()
    assert ask(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
    outside = outside_address()
    if outside is not None:  # the machine's own network address: refused
        assert not reachable(outside, port)


def test_it_binds_the_address_it_is_told(serve) -> None:
    port = serve(metrics_host="127.0.0.2")  # loopback too on Linux, but another address
    assert ask(f"http://127.0.0.2:{port}/healthz") == (200, "ok\n")
    assert not reachable("127.0.0.1", port)


def test_all_addresses_only_when_asked(serve) -> None:
    port = serve(metrics_host="0.0.0.0")
    assert reachable("127.0.0.1", port) and reachable("127.0.0.2", port)
    outside = outside_address()
    if outside is not None:
        assert reachable(outside, port)
