"""`cartmem reviews`: staff verdicts on flags, exported as labels for the next model."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from app.cli._output import emit, json_option
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
