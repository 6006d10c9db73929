"""The CLI through click's CliRunner on the embedded SQLite default."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from app.cli import main


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("CARTMEM_DATABASE_URL", "CARTMEM_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CARTMEM_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(main, list(args))
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "beans.png"
    Image.new("RGB", (32, 24), (200, 40, 40)).save(path)
    return path


def test_db_upgrade_then_current(run) -> None:
    before = json.loads(run("db", "current", "--json").output)
    assert before["current"] is None and not before["up_to_date"]
    first = json.loads(run("db", "upgrade", "--json").output)
    assert first["changed"] and first["to"] == before["head"]
    again = json.loads(run("db", "upgrade", "--json").output)
    assert not again["changed"]
    assert json.loads(run("db", "current", "--json").output)["up_to_date"]
    assert "(head)" in run("db", "current").output


def test_catalog_add_and_list(run, png: Path) -> None:
    run("db", "upgrade")
    added = json.loads(
        run(
            "catalog",
            "add",
            "SKU-1",
            "--name",
            "Beans",
            "--image",
            str(png),
            "--price",
            "2.5",
            "--json",
        ).output
    )
    assert added["sku"] == "SKU-1" and added["price"] == "2.50"
    assert (added["image_width"], added["image_height"]) == (32, 24)
    listed = json.loads(run("catalog", "list", "--json").output)
    assert [p["sku"] for p in listed] == ["SKU-1"]
    assert "Beans" in run("catalog", "list").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bad sku!", "--name", "X"), "SKU 'bad sku!' is not valid"),
        (("SKU-2", "--name", "X", "--price", "cheap"), "price 'cheap' is not a number"),
        (("SKU-2", "--name", "X", "--price", "-1"), "must be zero or more"),
    ],
)
def test_catalog_add_rejects_bad_input(run, png: Path, args, message) -> None:
    run("db", "upgrade")
    result = run("catalog", "add", *args, "--image", str(png), ok=False)
    assert result.exit_code == 1
    assert message in result.output


def test_catalog_add_rejects_a_non_image_and_a_duplicate(run, png: Path, tmp_path: Path) -> None:
    run("db", "upgrade")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    result = run("catalog", "add", "A", "--name", "A", "--image", str(junk), ok=False)
    assert result.exit_code == 1 and "is not a readable image" in result.output
    missing = run(
        "catalog", "add", "A", "--name", "A", "--image", str(tmp_path / "none.png"), ok=False
    )
    assert missing.exit_code == 1 and "cannot read image" in missing.output
    run("catalog", "add", "A", "--name", "A", "--image", str(png))
    dup = run("catalog", "add", "A", "--name", "A", "--image", str(png), ok=False)
    assert dup.exit_code == 1 and "--replace" in dup.output
    run("catalog", "add", "A", "--name", "Renamed", "--image", str(png), "--replace")
    assert json.loads(run("catalog", "list", "--json").output)[0]["name"] == "Renamed"


def test_sessions_list_and_show(run, tmp_path: Path) -> None:
    run("db", "upgrade")
    from app.db import Database
    from app.settings import Settings
    from storage import Query, ShoppingSession

    database = Database(Settings(data_dir=tmp_path / "data"))
    with database.session() as db:
        db.add(
            ShoppingSession(
                id="sess-1",
                store_id="store-9",
                seq_gaps=[[3, 5]],
                losses=[{"reason": "the chunk was truncated after 4 frames.", "seq": 2}],
            )
        )
        db.add(Query(session_id="sess-1", kind="activity", params={}))
    database.dispose()
    listed = json.loads(run("sessions", "list", "--json").output)
    assert [(s["id"], s["queries"]) for s in listed] == [("sess-1", 1)]
    shown = json.loads(run("sessions", "show", "sess-1", "--json").output)
    assert shown["store_id"] == "store-9" and shown["status"] == "open"
    assert shown["losses"] == [{"reason": "the chunk was truncated after 4 frames.", "seq": 2}]
    assert "3->5" in run("sessions", "show", "sess-1").output
    assert "truncated after 4 frames" in run("sessions", "show", "sess-1").output
    missing = run("sessions", "show", "nope", ok=False)
    assert missing.exit_code == 1 and "no session 'nope'" in missing.output


def test_commands_before_migration_say_what_to_run(run) -> None:
    result = run("catalog", "list", ok=False)
    assert result.exit_code == 1
    assert "cartmem db upgrade" in result.output and "Traceback" not in result.output


def test_malformed_database_url_is_one_sentence(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTMEM_DATABASE_URL", "postgres//nohost")
    result = run("db", "current", ok=False)
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: CARTMEM_DATABASE_URL is not a database URL")
    assert len(result.output.strip().splitlines()) == 1


def test_unreachable_database_names_the_setting(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTMEM_DATABASE_URL", "postgresql://cartmem:pw@127.0.0.1:1/cartmem")
    result = run("db", "upgrade", ok=False)
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output and "CARTMEM_DATABASE_URL" in result.output
    assert "pw" not in result.output


def test_config_show_masks_secrets(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTMEM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CARTMEM_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("CARTMEM_KAFKA_SASL_PASSWORD", "topsecret")
    shown = json.loads(run("config", "show", "--json").output)
    assert shown["CARTMEM_KAFKA_SASL_PASSWORD"] == "***"
    assert "topsecret" not in run("config", "show").output
