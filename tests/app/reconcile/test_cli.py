"""`cartmem scans` and `cartmem reconcile` through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from app.cli import AppContext
from app.cli.reconcile import reconcile
from app.cli.scans import scans
from app.db import Database
from storage import query_queue as queue

from .conftest import Span

SPANS = [Span("put_in_cart", "SOUP", 20, 23), Span("put_in_cart", "JAM", 50, 53)]


@pytest.fixture
def run(database: Database):
    runner = CliRunner()

    def invoke(command, *args: str, ok: bool = True):
        app = AppContext(database.settings)
        result = runner.invoke(command, list(args), obj=app)
        app.close()
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def test_scans_add_and_list(run, make_session) -> None:
    make_session("s1")
    added = json.loads(run(scans, "add", "--session", "s1", "--sku", "SOUP", "--json").output)
    assert (added["sku"], added["qty"]) == ("SOUP", 1)
    assert (
        "scanned 3 x JAM"
        in run(scans, "add", "--session", "s1", "--sku", "JAM", "--qty", "3").output
    )
    listed = json.loads(run(scans, "list", "--session", "s1", "--json").output)
    assert [(s["sku"], s["qty"]) for s in listed] == [("SOUP", 1), ("JAM", 3)]
    assert "JAM" in run(scans, "list", "--session", "s1").output
    failed = run(scans, "add", "--session", "nope", "--sku", "SOUP", ok=False)
    assert failed.exit_code != 0 and "no session 'nope'" in str(failed.exception)


def test_reconcile_waits_for_answers_then_reports(
    run, database, make_session, make_catalog, answer_all
) -> None:
    make_catalog("JAM", "SOUP")
    make_session("s1")
    run(scans, "add", "--session", "s1", "--sku", "JAM")
    assert "not reconciled yet" in run(reconcile, "s1").output
    with database.session() as db:  # asked as CARTMEM_RECONCILE_EVIDENCE reads (cart)
        asked = queue.list_queries(db, session_id="s1", limit=100)
    assert len(asked) == 2 and all(q.params.get("cart") for q in asked)
    answer_all(SPANS)

    shown = run(reconcile, "s1").output
    assert "not_scanned" in shown and "SOUP" in shown and "put_in_cart at 20-23 s" in shown
    report = json.loads(run(reconcile, "s1", "--json").output)
    assert report["state"] == "done"
    assert [(d["kind"], d["sku"]) for d in report["discrepancies"]] == [("not_scanned", "SOUP")]
    assert {b["sku"]: b["qty"] for b in report["expected"]} == {"JAM": 1, "SOUP": 1}

    run(scans, "add", "--session", "s1", "--sku", "SOUP")
    assert "--recompute takes them in" in run(reconcile, "s1").output
    again = json.loads(run(reconcile, "s1", "--recompute", "--json").output)
    assert again["discrepancies"] == [] and not again["scans_changed"]
