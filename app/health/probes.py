"""Cheap checks that a worker's servers answer, run by the prober's thread every few seconds.

Each ``check`` returns None when all is well, else one sentence saying what is wrong.
"""

from __future__ import annotations

import socket
from typing import Protocol

from app.db import Database
from app.errors import CartmemError
from app.settings import env_name


class Probe(Protocol):
    name: str

    def check(self) -> str | None: ...


class DatabaseProbe:
    """``SELECT 1`` on the worker's own connection pool: the connections the work uses."""

    name = "database"

    def __init__(self, database: Database) -> None:
        self.database = database

    def check(self) -> str | None:
        try:
            self.database.ping()
        except CartmemError as exc:
            return str(exc)
        return None


class BrokerProbe:
    """A TCP connection to any bootstrap server.

    The consumer is not safe to use from a second thread and does not say whether it is
    connected, so the probe asks the network: a broker that accepts connections is up. A
    consumer that is up but cannot read shows as a stall instead (records wait, none apply).
    """

    name = "broker"

    def __init__(self, bootstrap_servers: str, timeout_s: float = 3.0) -> None:
        self.servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
        self.timeout_s = timeout_s

    def check(self) -> str | None:
        failures = []
        for server in self.servers:
            host, _, port = server.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), self.timeout_s):
                    return None
            except (OSError, ValueError) as exc:
                failures.append(f"{server}: {getattr(exc, 'strerror', None) or exc}")
        return (
            f"no Kafka broker of {env_name('kafka_bootstrap_servers')} accepts connections "
            f"({'; '.join(failures)})."
        )
