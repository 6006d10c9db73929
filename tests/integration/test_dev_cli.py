"""`cartmem dev up` / `dev down` start and stop real servers that the printed env reaches."""

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from kafka import KafkaAdminClient

from app.cli import main

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_dev_up_prints_a_working_environment_and_down_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARTMEM_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    up = runner.invoke(main, ["dev", "up", "--json"])
    assert up.exit_code == 0, up.output
    try:
        env = json.loads(up.stdout)  # progress lines go to stderr
        assert set(env) == {"CARTMEM_DATABASE_URL", "CARTMEM_KAFKA_BOOTSTRAP_SERVERS"}
        engine = sa.create_engine(env["CARTMEM_DATABASE_URL"])
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT 1")) == 1
        engine.dispose()
        admin = KafkaAdminClient(bootstrap_servers=env["CARTMEM_KAFKA_BOOTSTRAP_SERVERS"])
        assert admin.describe_cluster()["brokers"]
        admin.close()
        state = json.loads((tmp_path / "dev" / "devstack.json").read_text())
        pids = _pids(state)
        assert pids and all(_alive(p) for p in pids)
        again = runner.invoke(main, ["dev", "up"])
        assert again.exit_code == 0 and again.stdout.startswith("export CARTMEM_DATABASE_URL=")
        assert _pids(json.loads((tmp_path / "dev" / "devstack.json").read_text())) == pids
    finally:
        down = runner.invoke(main, ["dev", "down"])
    assert down.exit_code == 0, down.output
    assert not any(_alive(p) for p in pids)
    gone = runner.invoke(main, ["dev", "down"])
    assert gone.exit_code == 1 and "cartmem dev up" in gone.output


def _pids(state: dict) -> list[int]:
    found: list[int] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "pid" and isinstance(v, int):
                    found.append(v)
                else:
                    walk(v)

    walk(state)
    return sorted(found)
