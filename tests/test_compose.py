"""compose.yaml and the Dockerfile agree with the settings (no Docker engine runs here)."""

import dataclasses
from pathlib import Path

import sqlalchemy as sa
import yaml

from app.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
KNOWN = {env_name(f.name) for f in dataclasses.fields(Settings)}


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_services_exist_with_healthchecks() -> None:
    services = compose()["services"]
    assert {"kafka", "postgres", "ingest", "answer"} <= services.keys()
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
        assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["ingest"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert 'ENTRYPOINT ["cartmem"]' in (ROOT / "Dockerfile").read_text()


def test_worker_variables_are_settings_and_point_at_the_services() -> None:
    data = compose()
    services = data["services"]
    env = services["ingest"]["environment"]
    assert env == services["answer"]["environment"]
    assert set(env) <= KNOWN, set(env) - KNOWN
    settings = Settings.from_env({k: str(v) for k, v in env.items()})
    url = sa.make_url(settings.database_url)
    pg = services["postgres"]["environment"]
    assert (url.host, url.port, url.username, url.password, url.database) == (
        "postgres",
        5432,
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )
    kafka = services["kafka"]["environment"]
    assert f"INTERNAL://{settings.kafka_bootstrap_servers}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    host, port = settings.kafka_bootstrap_servers.split(":")
    assert f"INTERNAL://:{port}" in kafka["KAFKA_LISTENERS"] and host == "kafka"


def test_workers_serve_health_in_their_network_and_are_checked_by_it() -> None:
    services = compose()["services"]
    env = services["answer"]["environment"]
    settings = Settings.from_env({k: str(v) for k, v in env.items()})
    assert settings.metrics_port > 0 and settings.metrics_host == "0.0.0.0"
    assert Settings().metrics_host == "127.0.0.1", "outside a container: loopback only"
    for name in ("ingest", "answer"):
        check = services[name]["healthcheck"]
        assert check["test"] == ["CMD", "python", "-m", "app.health.check", "readyz"]
        assert check["start_period"]  # loading the model is not a failure
        assert "ports" not in services[name], "metrics stay inside the compose network"
    assert (ROOT / "app" / "health" / "check.py").is_file()
