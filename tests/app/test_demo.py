"""`cartmem demo --json` end to end on embedded defaults, with the shipped checkpoint."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main

pytestmark = pytest.mark.slow


def test_demo_reports_every_part_of_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "CARTMEM_DATABASE_URL",
        "CARTMEM_KAFKA_BOOTSTRAP_SERVERS",
        "CARTMEM_CHECKPOINT_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CARTMEM_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["demo", "--json"])  # make demo's session
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["answers"]) == {"activity", "which_product", "object", "time"}
    assert all(a["status"] == "done" for a in report["answers"].values()), report["answers"]
    assert report["answers"]["object"]["answer"]["boxes"]
    rec = report["reconciliation"]
    assert rec["state"] == "done" and rec["questions"]["waiting"] == 0
    planted = report["planted_missing"]
    assert planted in report["basket_truth"] and planted not in report["scanned"]
    # the shipped checkpoint names the planted product for the moment it went into the cart
    # (a window around the annotated put, asked against the whole catalog) ...
    ranked = report["answers"]["which_product"]["answer"]["products"]
    assert ranked[0]["sku"] == planted, ranked
    # ... and flags it as not scanned
    flags = [d for d in rec["discrepancies"] if d["kind"] == "not_scanned"]
    assert planted in {f["sku"] for f in flags}, rec["discrepancies"]
    assert report["planted_flagged"] is True
    assert Path(report["timeline_png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # staff see the planted flag's moment: a picture of it, named after the product
    evidence = Path(report["evidence_png"])
    assert evidence.name.endswith(f"-{planted}.png") and evidence.parent.name == "evidence"
    assert evidence.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
