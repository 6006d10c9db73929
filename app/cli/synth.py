"""`cartmem synth`: generate a synthetic store dataset (videos, catalog, annotations, queries)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.cli._output import emit, json_option, table
from app.errors import InvalidInputError


@click.command()
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--videos", type=click.IntRange(1, 100_000), default=10, show_default=True)
@click.option("--minutes", type=click.FloatRange(0.1, 600), default=5.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace a dataset already in --out.")
@json_option
def synth(
    out: Path, videos: int, minutes: float, seed: int, overwrite: bool, as_json: bool
) -> None:
    """Draw shopping sessions: H.264 videos, a catalog, boxes, spans and ReST-style queries."""
    from model.synth import generate_dataset  # late: the model package loads torch
    from model.synth.errors import SynthError

    with click.progressbar(length=1, label="drawing frames", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        try:
            summary = generate_dataset(
                out,
                videos=videos,
                minutes=minutes,
                seed=seed,
                overwrite=overwrite,
                progress=progress,
            )
        except SynthError as exc:
            raise InvalidInputError(str(exc)) from None
    rows = [
        (split, summary.videos[split], summary.queries[split]) for split in ("train", "val", "test")
    ]
    emit(
        summary,
        as_json,
        lambda console: console.print(
            table(
                f"{summary.root}: {summary.skus} SKUs, {summary.seconds_of_video / 60:.1f} min "
                f"of video in {summary.elapsed_seconds:.1f} s",
                ("split", "videos", "queries"),
                rows,
            )
        ),
    )
