"""`cartmem reconcile`: a finished session's expected basket against what the till scanned."""

from __future__ import annotations

import getpass

import click
from rich.console import Console

from app import reconcile as reconcile_ops
from app.cli._output import emit, json_option, table
from app.reconcile import Event, ReconciliationReport
from app.reconcile.flag_confidence import configured
from app.reconcile.reviews import Review, review_flag


@click.command()
@click.argument("session_id")
@click.option(
    "--recompute",
    is_flag=True,
    help="Derive it again from the stored answers and the scans as they are now.",
)
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Wait up to S seconds for the answer worker to finish the questions.",
)
@click.option("--confirm", "confirm_sku", metavar="SKU", help="Staff confirm the flag on SKU.")
@click.option("--dismiss", "dismiss_sku", metavar="SKU", help="Staff dismiss the flag on SKU.")
@click.option("--note", default=None, help="Why (required with --dismiss).")
@click.option(
    "--by",
    "reviewer",
    default=None,
    help="Who reviews (default: the logged-in user).",
)
@json_option
@click.pass_obj
def reconcile(
    app,
    session_id: str,
    recompute: bool,
    wait_s: float,
    confirm_sku: str | None,
    dismiss_sku: str | None,
    note: str | None,
    reviewer: str | None,
    as_json: bool,
) -> None:
    """Expected basket, scanned items and discrepancies of session SESSION_ID.

    The first call for a session that was never reconciled asks its questions; the
    answer worker (`cartmem answer`) answers them. --confirm / --dismiss record staff's
    verdict on one flag (kept through --recompute, with who and when).
    """
    if confirm_sku and dismiss_sku:
        raise click.UsageError("give --confirm or --dismiss, not both.")
    if note is not None and not (confirm_sku or dismiss_sku):
        raise click.UsageError("--note goes with --confirm or --dismiss.")
    report = reconcile_ops.reconcile_now(
        app.database,
        session_id,
        recompute=recompute,
        wait_s=wait_s,
        evidence=app.settings.reconcile_evidence,
        min_confidence=app.settings.reconcile_min_confidence,
        calibration=configured(app.settings.flag_calibration),
        webhook=bool(app.settings.webhook_url),
    )
    sku = confirm_sku or dismiss_sku
    if sku:
        review_flag(
            app.database,
            session_id,
            sku,
            verdict="confirmed" if confirm_sku else "dismissed",
            reviewer=reviewer or getpass.getuser(),
            note=note,
        )
        report = reconcile_ops.reconcile_now(app.database, session_id)
    emit(report.to_json(), as_json, lambda out: _print(out, report))


def _print(out: Console, r: ReconciliationReport) -> None:
    q = r.questions
    asked = f"{q.asked} questions: {q.answered} answered, {q.failed} failed, {q.waiting} open"
    if r.state != "done":
        out.print(
            f"session {r.session_id}: not reconciled yet ({asked}); "
            "is `cartmem answer` running? --wait S waits for it."
        )
        return
    computed = r.computed_at.isoformat(timespec="seconds") if r.computed_at else "?"
    out.print(f"session {r.session_id}: {asked}; model {r.model_version}, computed {computed}")
    verdicts = r.verdicts()
    rows = (
        (
            d.kind.value,
            d.sku,
            d.expected,
            d.scanned,
            f"{d.confidence:.2f}",
            _evidence(d.evidence),
            _verdict(verdicts.get(d.sku)),
        )
        for d in r.discrepancies
    )
    columns = ("kind", "sku", "expected", "scanned", "confidence", "evidence", "review")
    out.print(table(f"discrepancies ({len(r.discrepancies)})", columns, rows))
    for review in r.reviews_of_dropped_flags():
        out.print(f"{review.sku}: no longer flagged; staff had {_verdict(review)}")
    basket = ((b.sku, b.qty, f"{b.confidence:.2f}", _evidence(b.events)) for b in r.expected)
    basket_columns = ("sku", "qty", "confidence", "evidence")
    out.print(table(f"expected basket ({len(r.expected)})", basket_columns, basket))
    scanned = sorted(r.scanned.items())
    out.print(table(f"scanned ({len(scanned)})", ("sku", "qty"), scanned))
    if r.unchecked:
        out.print(f"not checked (not asked about): {', '.join(r.unchecked)}")
    if r.scans_changed:
        out.print("the till added lines after this was computed; --recompute takes them in.")


def _evidence(events: tuple[Event, ...]) -> str:
    """Counted events with their times; without any, how close the model came to one."""
    counted = [e for e in events if e.counted]
    shown = counted or sorted(events, key=lambda e: -e.probability)[:1]
    return "; ".join(_event(e) for e in shown)


def _event(e: Event) -> str:
    where = f"in {e.start:g}-{e.end:g} s"
    if e.time is not None:
        where = f"at {e.time.start:g}-{e.time.end:g} s"
    seen = "" if e.counted else "not seen: best "
    return f"{seen}{e.activity} {where} (p {e.probability:.2f})"


def _verdict(review: Review | None) -> str:
    if review is None:
        return ""
    when = review.reviewed_at.isoformat(timespec="minutes")
    note = f": {review.note}" if review.note else ""
    return f"{review.verdict} by {review.reviewer} {when}{note}"
