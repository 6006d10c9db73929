"""compose.yaml and the Dockerfile agree with the settings (no Docker engine runs here)."""

import dataclasses
import itertools
from pathlib import Path

import sqlalchemy as sa
import yaml

from app.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
KNOWN = {env_name(f.name) for f in dataclasses.fields(Settings)}


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def secret_files(service: dict) -> dict[str, str]:
    """The service's environment with each CARTMEM_*_FILE read from its dev-secrets/ file,
    as the container sees it."""
    files = {name: spec["file"] for name, spec in compose()["secrets"].items()}
    env = {k: str(v) for k, v in service["environment"].items()}
    for key, value in list(env.items()):
        if key.endswith("_FILE") and value.startswith("/run/secrets/"):
            name = value.removeprefix("/run/secrets/")
            assert name in service["secrets"], f"{name} is not mounted"
            env[key] = str(ROOT / files[name])
    return env


def test_services_exist_with_healthchecks() -> None:
    services = compose()["services"]
    assert {"kafka", "postgres", "migrate", "roles", "ingest", "answer", "housekeeper"} <= set(
        services
    )
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"] == "postgres:16"
    for name in ("kafka", "postgres"):
        assert services[name]["healthcheck"]["test"]
    assert "9092:9092" in services["kafka"]["ports"]
    assert "5432:5432" in services["postgres"]["ports"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])


def test_workers_are_built_here_and_wait_for_healthy_services() -> None:
    services = compose()["services"]
    for name in ("ingest", "answer"):
        worker = services[name]
        assert worker["build"] == "." and (ROOT / "Dockerfile").is_file()
        assert worker["command"] == [name]
        assert worker["depends_on"]["roles"]["condition"] == "service_completed_successfully"
    assert services["ingest"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["roles"]["command"][:3] == ["db", "roles", "--apply"]
    roles_after = services["roles"]["depends_on"]["migrate"]["condition"]
    assert roles_after == "service_completed_successfully"
    assert 'ENTRYPOINT ["cartmem"]' in (ROOT / "Dockerfile").read_text()


def test_every_service_reads_settings_and_its_database_url_from_a_secret() -> None:
    data = compose()
    services = data["services"]
    pg = services["postgres"]["environment"]
    owner_password = (ROOT / data["secrets"]["postgres_password"]["file"]).read_text().strip()
    assert pg["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    known = KNOWN | {f"{name}_FILE" for name in KNOWN}
    for name in ("migrate", "roles", "ingest", "answer", "housekeeper"):
        env = secret_files(services[name])
        assert set(env) <= known, set(env) - known
        assert "CARTMEM_DATABASE_URL" not in env, "a password inline in the environment"
        settings = Settings.from_env(env)
        url = sa.make_url(settings.database_url)
        assert (url.host, url.port, url.database) == ("postgres", 5432, pg["POSTGRES_DB"])
        owner = (url.username, url.password) == (pg["POSTGRES_USER"], owner_password)
        assert owner == (name in ("migrate", "roles")), f"{name} logs in as {url.username}"
        kafka = services["kafka"]["environment"]
        assert (
            f"INTERNAL://{settings.kafka_bootstrap_servers}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
        )
        host, port = settings.kafka_bootstrap_servers.split(":")
        assert f"INTERNAL://:{port}" in kafka["KAFKA_LISTENERS"] and host == "kafka"


def test_each_worker_logs_in_as_a_member_of_its_own_role_only() -> None:
    services = compose()["services"]
    command = services["roles"]["command"]
    pairs = itertools.pairwise(command)
    logins = dict(value.split("=", 1) for flag, value in pairs if flag == "--login-url")
    assert set(logins) == {"ingest", "answer", "checkout", "staff"}
    users = {}
    for component, secret in logins.items():
        assert secret.removeprefix("/run/secrets/") in services["roles"]["secrets"]
        path = ROOT / compose()["secrets"][secret.removeprefix("/run/secrets/")]["file"]
        users[component] = sa.make_url(path.read_text().strip()).username
    assert len(set(users.values())) == 4, "one login user per component"
    for service, component in (
        ("ingest", "ingest"),
        ("answer", "answer"),
        ("housekeeper", "staff"),
    ):
        url = sa.make_url(Settings.from_env(secret_files(services[service])).database_url)
        assert url.username == users[component], service
    for worker in ("ingest", "answer"):  # their roles may not delete: the housekeeper purges
        assert Settings.from_env(secret_files(services[worker])).purge_interval_s == 0
    assert services["housekeeper"]["command"][:2] == ["purge", "--every"]


def test_workers_serve_health_in_their_network_and_are_checked_by_it() -> None:
    services = compose()["services"]
    settings = Settings.from_env(secret_files(services["answer"]))
    assert settings.metrics_port > 0 and settings.metrics_host == "0.0.0.0"
    assert Settings().metrics_host == "127.0.0.1", "outside a container: loopback only"
    for name in ("ingest", "answer"):
        check = services[name]["healthcheck"]
        assert check["test"] == ["CMD", "python", "-m", "app.health.check", "readyz"]
        assert check["start_period"]  # loading the model is not a failure
        assert "ports" not in services[name], "metrics stay inside the compose network"
    assert (ROOT / "app" / "health" / "check.py").is_file()
