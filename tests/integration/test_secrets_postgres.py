"""Secrets given by file, against a PostgreSQL that demands TLS and a SCRAM password.

The server is a second one started for this module with Debian's binaries (pgserver's are
built without SSL), a certificate signed by a throwaway CA (openssl), and a pg_hba.conf
that rejects any connection without TLS and asks every user but the superuser for a
password. A database URL read from a file connects with ``sslmode=verify-full``; the
password never appears in ``config show``, in the workers' logs (text and JSON) or in an
error message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from app.cli import main
from app.db import Database
from app.devstack import PostgresServer
from app.errors import DatabaseUnavailableError
from app.settings import Settings
from tests.conftest import missing_tool, require_tool, run_cartmem
from tests.support.certificates import make_certificates

pytestmark = pytest.mark.postgres
USER, PASSWORD = "till_app", "Tls-Pa55word-7"
SYSTEM_POSTGRES = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TlsServer:
    host: str
    port: int
    ca: Path  # the CA that signed the server's certificate
    other_ca: Path  # a CA that did not

    def url(self, password: str = PASSWORD, **query: str) -> str:
        url = sa.URL.create(
            "postgresql+psycopg2", USER, password, self.host, self.port, "cartmem", query
        )
        return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    if not SYSTEM_POSTGRES:
        missing_tool("PostgreSQL with SSL is not installed (apt-get install postgresql)")
    require_tool("openssl", "openssl")
    workdir = tmp_path_factory.mktemp("pg-tls")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CARTMEM_POSTGRES_BIN_DIR", str(SYSTEM_POSTGRES[-1].parent))
        server = PostgresServer.start(workdir)
    try:
        data = workdir / "pgdata"
        make_certificates(workdir)
        owner = data.stat()
        for name in ("server.crt", "server.key"):  # the server's account must own its key
            (data / name).write_bytes((workdir / name).read_bytes())
            os.chown(data / name, owner.st_uid, owner.st_gid)
        (data / "server.key").chmod(0o600)
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "hostssl all postgres 127.0.0.1/32 trust\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 reject\n"
        )
        admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("ALTER SYSTEM SET ssl = on"))
            conn.execute(sa.text(f"ALTER SYSTEM SET ssl_cert_file = '{data / 'server.crt'}'"))
            conn.execute(sa.text(f"ALTER SYSTEM SET ssl_key_file = '{data / 'server.key'}'"))
            conn.execute(sa.text("SELECT pg_reload_conf()"))
            conn.execute(sa.text(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"))
            conn.execute(sa.text(f"CREATE DATABASE cartmem OWNER {USER}"))
        admin.dispose()
        yield TlsServer("127.0.0.1", server.port, workdir / "ca.pem", workdir / "other-ca.pem")
    finally:
        server.stop()


def from_file(tmp_path: Path, url: str) -> Settings:
    secret = tmp_path / "database_url"
    secret.write_text(url + "\n")
    return Settings.from_env({"CARTMEM_DATABASE_URL_FILE": str(secret)})


def test_verify_full_against_the_ca_with_the_password_from_a_file(
    tls_server: TlsServer, tmp_path: Path
) -> None:
    url = tls_server.url(sslmode="verify-full", sslrootcert=str(tls_server.ca))
    database = Database(from_file(tmp_path, url))
    try:
        with database.session() as db:
            user, ssl = db.execute(
                sa.text("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ).one()
    finally:
        database.dispose()
    assert (user, ssl) == (USER, True)


@pytest.mark.parametrize(
    ("query", "password", "words"),
    [
        ({"sslmode": "disable"}, PASSWORD, "no encryption"),
        ({"sslmode": "verify-full", "sslrootcert": "OTHER"}, PASSWORD, "certificate verify"),
        ({"sslmode": "require"}, "Wrong-Pa55word-9", "password authentication failed"),
    ],
)
def test_a_refused_connection_says_why_without_the_password(
    tls_server: TlsServer, tmp_path: Path, query: dict[str, str], password: str, words: str
) -> None:
    if query.get("sslrootcert") == "OTHER":
        query = query | {"sslrootcert": str(tls_server.other_ca)}
    database = Database(from_file(tmp_path, tls_server.url(password, **query)))
    try:
        with pytest.raises(DatabaseUnavailableError) as info:
            database.ping()
    finally:
        database.dispose()
    message = str(info.value)
    assert words in message and f"{USER}:***@" in message, message
    assert password not in message and PASSWORD not in message


def test_no_secret_given_by_file_shows_in_config_logs_or_errors(
    tls_server: TlsServer, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    secrets = {
        "CARTMEM_DATABASE_URL": tls_server.url(sslmode="require"),
        "CARTMEM_KAFKA_SASL_PASSWORD": "Kafka-Pa55word-3",
        "CARTMEM_WEBHOOK_SECRET": "Webhook-Key-0123456789",
    }
    env = {
        "CARTMEM_DATA_DIR": str(tmp_path / "data"),
        "CARTMEM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CARTMEM_KAFKA_SASL_MECHANISM": "PLAIN",
        "CARTMEM_KAFKA_SASL_USERNAME": "cartmem",
        "CARTMEM_WEBHOOK_URL": "http://127.0.0.1:1/hook",
        "CARTMEM_CHECKPOINT_PATH": str(tiny_checkpoint),
        "CARTMEM_DEVICE": "cpu",
        "CARTMEM_QUERY_POLL_S": "0.2",
    }
    for name, value in secrets.items():
        (tmp_path / name).write_text(value + "\n")
        env[f"{name}_FILE"] = str(tmp_path / name)
    values = [PASSWORD, *list(secrets.values())[1:]]
    shown = []

    runner = CliRunner()
    for args in (["config", "show"], ["config", "show", "--json"], ["db", "upgrade"]):
        result = runner.invoke(main, args, env=env)
        assert result.exit_code == 0, result.output
        shown.append(result.output)
    assert "***" in shown[0] and "sslmode=require" in shown[0]

    # a wrong password: the error sentence, and the worker's log lines in both formats
    wrong = tls_server.url(password="Wrong-Pa55word-9", sslmode="require")
    (tmp_path / "wrong_url").write_text(wrong)
    values.append("Wrong-Pa55word-9")
    failing = env | {"CARTMEM_DATABASE_URL_FILE": str(tmp_path / "wrong_url")}
    result = runner.invoke(main, ["sessions", "list"], env=failing)
    assert result.exit_code == 1 and "password authentication failed" in result.output
    shown.append(result.output)
    for log_format in ("text", "json"):
        out = _cartmem(failing | {"CARTMEM_LOG_FORMAT": log_format}, "answer", "--until-idle", "1")
        assert "cannot reach the database" in out and "password authentication failed" in out
        shown.append(out)
    logged = [json.loads(line) for line in shown[-1].splitlines() if line.startswith("{")]
    assert any("cannot reach the database" in line["message"] for line in logged)

    for out in shown:
        leaked = [v for v in values if v in out]
        assert not leaked, (leaked, out)


def _cartmem(env: dict[str, str], *args: str) -> str:
    """``cartmem ARGS`` in a process of its own with only ``env``'s CARTMEM_ variables; its
    stdout and stderr together."""
    done = run_cartmem(env, *args)
    return done.stdout + done.stderr
