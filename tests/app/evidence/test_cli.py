"""`cartmem evidence` on the embedded SQLite: a session stored the way ingest stores it
(thumbnails through the ingest commit), a reconciliation row, a catalog and an object
answer; one PNG per flag comes out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from app import db as database_ops
from app.answer.payloads import Answering, ObjectAnswer, TimedBox
from app.cli import main
from app.db import Database
from app.ingest.thumbnails import ThumbnailKeeper, ThumbnailPolicy
from app.reconcile import Discrepancy, DiscrepancyKind, Event, TimeEvidence
from app.settings import Settings
from storage import add_product
from storage import query_queue as queue
from storage.ingest_state import SessionSnapshot, commit_ingest_state
from storage.reconciliations import save_reconciliation

CATALOG_GREEN = (12, 200, 90)  # in the catalog image only, never in a frame


def frames(seconds: int) -> np.ndarray:
    """A grey shelf with a red product moving right, one frame a second (N, 144, 192, 3)."""
    out = np.full((seconds, 144, 192, 3), 128, dtype=np.uint8)
    for t in range(seconds):
        x = 4 * t % 160
        out[t, 60:90, x : x + 24] = (220, 30, 30)
    return out


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("CARTMEM_DATABASE_URL", "CARTMEM_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CARTMEM_DATA_DIR", str(tmp_path / "data"))
    settings = Settings.from_env()
    database_ops.upgrade(settings)
    return settings


@pytest.fixture
def session(settings: Settings) -> str:
    """Session ``s1``: 60 s of thumbnails, two flags (SOUP with an object answer at its put,
    JAM with only a near miss), SOUP in the catalog."""
    keeper = ThumbnailKeeper(ThumbnailPolicy.of(settings, 1.0), 1.0)
    keeper.take(0, frames(60))
    database = Database(settings)
    with database.session() as db:
        commit_ingest_state(
            db,
            group="g",
            offsets={},
            sessions=[SessionSnapshot("s1", status="closed", thumbnails=keeper.added())],
        )
    with database.session() as db:
        catalog = Image.new("RGB", (64, 64), CATALOG_GREEN)
        png = io.BytesIO()
        catalog.save(png, "PNG")
        add_product(db, sku="SOUP", name="Soup", image_png=png.getvalue(), image_size=(64, 64))
        window = Answering("object", 19.0, 23.0, False, False, 60)
        boxes = [TimedBox(float(t), [0.5, 0.5, 0.3, 0.3]) for t in range(19, 23)]
        payload = ObjectAnswer(window, "put_in_cart", boxes).to_json()
        params = {"activity": "put_in_cart", "from": 19.0, "to": 23.0}
        queue.enqueue(db, session_id="s1", kind="object", params=params)
        (claimed,) = queue.claim(db, worker="t", limit=1, lease_s=60)
        queue.complete(db, query_id=claimed.id, worker="t", payload=payload, model_version="m")
        put = Event("put_in_cart", 1, 16.0, 32.0, 0.9, True, TimeEvidence(19.0, 22.0, 0.8))
        miss = Event("put_in_cart", 1, 40.0, 56.0, 0.3, False)
        flags = [
            Discrepancy(DiscrepancyKind.NOT_SCANNED, "SOUP", 1, 0, 0.9, (put,)),
            Discrepancy(DiscrepancyKind.NOT_SCANNED, "JAM", 1, 0, 0.4, (miss,)),
        ]
        save_reconciliation(
            db,
            session_id="s1",
            expected=[],
            scanned=[],
            discrepancies=[d.to_json() for d in flags],
            model_version="m",
        )
    database.dispose()
    return "s1"


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_one_png_per_flag_with_the_moment_and_the_catalog_image(session, tmp_path) -> None:
    out = tmp_path / "evidence"
    listed = json.loads(run("evidence", session, "--out", str(out), "--json").output)
    assert [(f["sku"], f["kind"]) for f in listed] == [
        ("SOUP", "not_scanned"),
        ("JAM", "not_scanned"),
    ]
    assert sorted(p.name for p in out.iterdir()) == ["s1-01-SOUP.png", "s1-02-JAM.png"]
    soup, jam = listed
    assert soup["moments"] == [[19.0, 22.0]] and soup["frames"] == [18.0, 19, 20, 21, 22, 23]
    assert soup["boxes"] == 4  # the object answer's steps 19-22, on the frames at those times
    assert jam["moments"] == [[40.0, 56.0]] and len(jam["frames"]) == 6 and jam["boxes"] == 0

    picture = np.asarray(Image.open(soup["path"]))
    assert Image.open(soup["path"]).format == "PNG"
    green = (picture == CATALOG_GREEN).all(axis=-1).sum()
    assert green >= 190 * 190  # the catalog image, enlarged to its panel
    jam_picture = np.asarray(Image.open(jam["path"]))
    assert not (jam_picture == CATALOG_GREEN).all(axis=-1).any()  # JAM is not in the catalog
    red = (jam_picture[..., 0] > 180) & (jam_picture[..., 1] < 80)  # no box drawn on JAM's
    assert red.sum() > 6 * 30 * 20  # the red product, on every frame

    printed = run("evidence", session, "--out", str(out)).output.split()
    assert printed == [soup["path"], jam["path"]]


def test_only_the_flags_asked_for(session, tmp_path) -> None:
    listed = json.loads(
        run("evidence", session, "--out", str(tmp_path), "--sku", "JAM", "--json").output
    )
    assert [f["sku"] for f in listed] == ["JAM"]


def test_an_unknown_session_is_one_sentence(settings, tmp_path) -> None:
    result = run("evidence", "nope", "--out", str(tmp_path / "x"), ok=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: no session 'nope'; `cartmem sessions list` shows the known ones.\n"
    )


def test_a_session_not_reconciled_yet_says_what_to_run(settings, tmp_path) -> None:
    database = Database(settings)
    with database.session() as db:
        commit_ingest_state(db, group="g", offsets={}, sessions=[SessionSnapshot("s2")])
    database.dispose()
    result = run("evidence", "s2", "--out", str(tmp_path), ok=False)
    assert result.exit_code == 1 and "`cartmem reconcile s2`" in result.output
