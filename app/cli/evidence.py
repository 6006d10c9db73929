"""`cartmem evidence`: a picture per flag, for staff to see why a product was flagged."""

from __future__ import annotations

from pathlib import Path

import click

from app.cli._output import emit, json_option


@click.command()
@click.argument("session_id")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the PNGs into (made if missing).",
)
@click.option("--sku", "skus", multiple=True, help="Only the flag on this SKU (repeatable).")
@json_option
@click.pass_obj
def evidence(app, session_id: str, out_dir: Path, skus: tuple[str, ...], as_json: bool) -> None:
    """Write one PNG per flag of SESSION_ID's reconciliation (the moments it rests on, the
    product's box where the model answered one, its catalog image) and print their paths."""
    from app.evidence import write_evidence  # late: Pillow and the answer payloads

    written = write_evidence(app.database, session_id, out_dir, skus=skus or None)

    def human(out) -> None:
        if not written:
            out.print(f"session {session_id} has no flags to show.")
        for f in written:
            out.print(f.path, markup=False)

    emit(written, as_json, human)
