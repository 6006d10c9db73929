"""Shared fixtures: one real Kafka broker and one real PostgreSQL per test session.

``CARTMEM_TEST_KAFKA`` (bootstrap servers) and ``CARTMEM_TEST_DATABASE_URL`` point the
tests at servers you run yourself; when unset, the harness starts its own on 127.0.0.1
(app.devstack) and stops them at the end. Each PostgreSQL test gets a database of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.settings import Settings

_SERVICE_LINES: list[str] = []


def _announce(config: pytest.Config, line: str) -> None:
    """Say which real server the tests use, now and again in the summary."""
    _SERVICE_LINES.append(line)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\n[cartmem] {line}")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if _SERVICE_LINES:
        terminalreporter.section("real services used")
        for line in _SERVICE_LINES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Bootstrap servers of a real broker: the given one, or one started for this run."""
    given = os.environ.get("CARTMEM_TEST_KAFKA")
    if given:
        _announce(request.config, f"Kafka: using CARTMEM_TEST_KAFKA={given}")
        yield given
        return
    from app.devstack import KafkaBroker
    from app.errors import DevStackError

    try:
        broker = KafkaBroker.start(tmp_path_factory.mktemp("kafka"))
    except DevStackError as exc:
        # e.g. no Java or Maven: the error names what to install
        pytest.fail(
            f"could not start the test Kafka broker ({exc}); install what it names, "
            "or set CARTMEM_TEST_KAFKA=host:port to use a broker of your own.",
            pytrace=False,
        )
    _announce(
        request.config, f"Kafka: started broker {broker.version} at {broker.bootstrap_servers}"
    )
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_admin_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a real PostgreSQL with rights to create databases."""
    given = os.environ.get("CARTMEM_TEST_DATABASE_URL")
    if given:
        url = Settings(database_url=given).database_url
        _announce(
            request.config, f"PostgreSQL: using CARTMEM_TEST_DATABASE_URL, {_server_version(url)}"
        )
        yield url
        return
    from app.devstack import PostgresServer
    from app.errors import DevStackError

    try:
        server = PostgresServer.start(tmp_path_factory.mktemp("postgres"))
    except DevStackError as exc:
        pytest.fail(f"could not start the test PostgreSQL: {exc}", pytrace=False)
    _announce(request.config, f"PostgreSQL: started at {server.url}, {_server_version(server.url)}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def make_pg_database(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """Factory: a new empty database on the test server per call, dropped after the test."""
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def make() -> str:
        name = f"cartmem_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return (
            sa.make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
        )

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_settings(make_pg_database: Callable[[], str], tmp_path: Path) -> Settings:
    """Settings pointing at a fresh, empty PostgreSQL database."""
    return Settings(data_dir=tmp_path / "data", database_url=make_pg_database())


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """The embedded default: a SQLite file under a fresh data dir."""
    return Settings(data_dir=tmp_path / "data")


def _server_version(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.scalar(sa.text("SELECT version()")))
    finally:
        engine.dispose()
