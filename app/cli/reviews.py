"""`cartmem reviews`: staff verdicts on flags, exported as labels for the next model."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from app.cli._output import emit, json_option
from app.reconcile.flag_confidence import configured
from app.reconcile.review_calibration import MIN_FLAGS, ReviewCalibration, calibrate_from_reviews
from app.reconcile.review_export import ExportSummary, export_reviews


@click.group()
def reviews() -> None:
    """Staff reviews of flags (recorded with `cartmem reconcile SESSION --confirm/--dismiss`)."""


@reviews.command("export")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Directory."
)
@click.option("--session", "session_ids", multiple=True, help="Only this session (repeatable).")
@json_option
@click.pass_obj
def export(app, out: Path, session_ids: tuple[str, ...], as_json: bool) -> None:
    """Write the current verdicts as dataset-format labels (docs/DATASET.md)."""
    summary = export_reviews(app.database, out, session_ids=list(session_ids) or None)
    emit(summary, as_json, lambda console: _print(console, summary))


def _print(out: Console, s: ExportSummary) -> None:
    out.print(
        f"{s.sessions} sessions, {s.confirmed} confirmed and {s.dismissed} dismissed flags "
        f"written to {s.out}"
    )
    for path in s.files:
        out.print(str(path))


@reviews.command("calibrate")
@click.option(
    "--min-flags",
    type=click.IntRange(min=2),
    default=MIN_FLAGS,
    show_default=True,
    help="Reviewed flags needed to fit.",
)
@json_option
@click.pass_obj
def calibrate(app, min_flags: int, as_json: bool) -> None:
    """Fit the flags' confidence on the staff's verdicts, and print the setting that
    applies it (CARTMEM_RECONCILE_FLAG_CALIBRATION). Changes nothing by itself."""
    current = configured(app.settings.flag_calibration)
    result = calibrate_from_reviews(app.database, current, minimum=min_flags)
    emit(result.to_json(), as_json, lambda console: _print_calibration(console, result))


def _print_calibration(out: Console, r: ReviewCalibration) -> None:
    out.print(
        f"{r.flags} reviewed flags with a margin: {r.confirmed} confirmed, "
        f"{r.flags - r.confirmed} dismissed ({r.without_margin} reviewed flags of other "
        "readings left out)"
    )
    out.print(
        f"Brier score on them: {r.brier_current:.3f} with the calibration in use, "
        f"{r.brier_fitted:.3f} fitted"
    )
    out.print(f"to apply it, set CARTMEM_RECONCILE_FLAG_CALIBRATION={r.setting}")
