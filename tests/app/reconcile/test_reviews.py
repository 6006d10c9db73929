"""Staff reviews of flags: recorded with who and why, kept through recomputation, exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.db import Database
from app.errors import InvalidInputError, NotFoundError
from app.reconcile import add_scan, reconcile_now, request_reconciliation
from app.reconcile.review_export import export_reviews
from app.reconcile.reviews import review_flag, session_reviews

from .test_service import SCANS, SKUS, SPANS


@pytest.fixture
def reconciled(database, make_session, make_catalog, answer_all) -> Database:
    """Session s1 reconciled: GRABBED not scanned, TWO under-scanned, PUT-BACK not taken."""
    make_catalog(*SKUS)
    make_session("s1")
    for sku, qty in SCANS.items():
        add_scan(database, "s1", sku, qty=qty)
    request_reconciliation(database, "s1", evidence="steps")
    answer_all(SPANS)
    assert {d.sku for d in reconcile_now(database, "s1").discrepancies} == {
        "GRABBED",
        "TWO",
        "PUT-BACK",
    }
    return database


def test_a_review_is_kept_with_who_when_why_and_the_flag_as_it_was(reconciled: Database) -> None:
    review = review_flag(
        reconciled, "s1", "GRABBED", verdict="confirmed", reviewer="ana", note="seen on camera"
    )
    assert (review.verdict, review.reviewer, review.note) == ("confirmed", "ana", "seen on camera")
    assert review.flag["kind"] == "not_scanned" and review.flag["expected"] == 1
    assert review.model_version == "m1" and review.reviewed_at is not None

    report = reconcile_now(reconciled, "s1")
    assert report.verdicts()["GRABBED"].reviewer == "ana"
    assert [r.sku for r in report.reviews] == ["GRABBED"]
    assert report.to_json()["reviews"][0]["verdict"] == "confirmed"


def test_the_latest_review_counts_and_the_history_stays(reconciled: Database) -> None:
    review_flag(reconciled, "s1", "TWO", verdict="dismissed", reviewer="ana", note="one item")
    review_flag(reconciled, "s1", "TWO", verdict="confirmed", reviewer="bo", note="two on tape")
    history = session_reviews(reconciled, "s1")
    assert [(r.verdict, r.reviewer) for r in history] == [("dismissed", "ana"), ("confirmed", "bo")]
    assert reconcile_now(reconciled, "s1").verdicts()["TWO"].verdict == "confirmed"


def test_recompute_never_loses_a_review(reconciled: Database) -> None:
    review_flag(reconciled, "s1", "GRABBED", verdict="confirmed", reviewer="ana")
    review_flag(reconciled, "s1", "TWO", verdict="dismissed", reviewer="ana", note="checked")
    add_scan(reconciled, "s1", "GRABBED")  # the till catches up: that flag goes away

    again = reconcile_now(reconciled, "s1", recompute=True)
    assert "GRABBED" not in {d.sku for d in again.discrepancies}
    assert set(again.verdicts()) == {"GRABBED", "TWO"}
    assert [r.sku for r in again.reviews_of_dropped_flags()] == ["GRABBED"]
    assert again.verdicts()["TWO"].note == "checked"


def test_reviews_refuse_what_cannot_be_reviewed(reconciled: Database, make_session) -> None:
    with pytest.raises(InvalidInputError, match=r"no flag for 'KEPT'.*GRABBED"):
        review_flag(reconciled, "s1", "KEPT", verdict="confirmed", reviewer="ana")
    with pytest.raises(InvalidInputError, match="needs --note"):
        review_flag(reconciled, "s1", "TWO", verdict="dismissed", reviewer="ana")
    with pytest.raises(InvalidInputError, match="one of confirmed, dismissed"):
        review_flag(reconciled, "s1", "TWO", verdict="maybe", reviewer="ana")
    make_session("s2")
    with pytest.raises(NotFoundError, match="no reconciliation"):
        review_flag(reconciled, "s2", "TWO", verdict="confirmed", reviewer="ana")
    assert session_reviews(reconciled, "s1") == []


def test_export_writes_current_verdicts_as_dataset_labels(
    reconciled: Database, tmp_path: Path
) -> None:
    review_flag(reconciled, "s1", "GRABBED", verdict="dismissed", reviewer="ana", note="x")
    review_flag(reconciled, "s1", "GRABBED", verdict="confirmed", reviewer="bo")
    review_flag(reconciled, "s1", "TWO", verdict="dismissed", reviewer="bo", note="one only")

    summary = export_reviews(reconciled, tmp_path / "out")
    assert (summary.sessions, summary.confirmed, summary.dismissed) == (1, 1, 1)
    record = json.loads((tmp_path / "out" / "annotations" / "s1.json").read_text())
    assert record["video_id"] == "s1"
    # GRABBED's put (43-46 s) happened; TWO's two counted puts are where staff say no
    assert record["spans"] == [
        {"activity": "put_in_cart", "sku": "GRABBED", "start": 43, "end": 46}
    ]
    assert [(s["sku"], s["start"]) for s in record["rejected_spans"]] == [("TWO", 20), ("TWO", 50)]
    assert {r["sku"]: r["verdict"] for r in record["reviews"]} == {
        "GRABBED": "confirmed",
        "TWO": "dismissed",
    }
    manifest = json.loads((tmp_path / "out" / "reviews.json").read_text())
    assert manifest["annotations"] == ["annotations/s1.json"]


def test_staff_review_and_export_from_the_command_line(
    reconciled: Database, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from app.cli import main

    env = {"CARTMEM_DATA_DIR": str(tmp_path / "data"), "CARTMEM_DATABASE_URL": ""}
    runner = CliRunner()
    done = runner.invoke(main, ["reconcile", "s1", "--confirm", "GRABBED", "--by", "ana"], env=env)
    assert done.exit_code == 0, done.output
    assert "review" in done.output  # the discrepancies table has the verdict column
    refused = runner.invoke(main, ["reconcile", "s1", "--dismiss", "TWO"], env=env)
    assert refused.exit_code == 1 and "needs --note" in refused.output
    both = runner.invoke(main, ["reconcile", "s1", "--confirm", "TWO", "--dismiss", "TWO"], env=env)
    assert both.exit_code == 2
    dismissed = runner.invoke(
        main,
        ["reconcile", "s1", "--dismiss", "TWO", "--note", "one only", "--by", "bo", "--json"],
        env=env,
    )
    report = json.loads(dismissed.output)
    assert [(r["sku"], r["verdict"]) for r in report["reviews"]] == [
        ("GRABBED", "confirmed"),
        ("TWO", "dismissed"),
    ]
    exported = runner.invoke(
        main, ["reviews", "export", "--out", str(tmp_path / "labels"), "--json"], env=env
    )
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["confirmed"] == 1
