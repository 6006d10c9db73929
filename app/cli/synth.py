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
@click.option(
    "--stores",
    type=click.IntRange(1, 999),
    default=1,
    show_default=True,
    help="Spread the videos over this many stores, each with a catalog of its own "
    "(SKUs S001-0001, ...); the split is then by store.",
)
@click.option(
    "--split",
    default="0.7,0.15,0.15",
    show_default=True,
    help="Train, val, test fractions of the videos, or of the stores with --stores > 1 "
    "(stores S001... train, then val, then test: test stores' products are in no train or "
    "val video). The seed fixes the catalogs and each video's seed follows from (seed, "
    "store, split, index): `--split 0,0,1` draws held-out test sessions (e.g. longer ones) "
    "for a model trained on that seed's train split.",
)
@click.option("--overwrite", is_flag=True, help="Replace a dataset already in --out.")
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    default=1,
    show_default=True,
    help="Processes drawing videos at once (e.g. $(nproc)); the dataset is the same byte for "
    "byte whatever their number.",
)
@json_option
def synth(
    out: Path,
    videos: int,
    minutes: float,
    seed: int,
    stores: int,
    split: str,
    overwrite: bool,
    workers: int,
    as_json: bool,
) -> None:
    """Draw shopping sessions: H.264 videos, a catalog, boxes, spans and ReST-style queries."""
    from model.synth import SynthConfig, generate_dataset  # late: the package loads torch
    from model.synth.errors import SynthError

    try:
        fractions = tuple(float(part) for part in split.split(","))
        config = SynthConfig(split=fractions)  # type: ignore[arg-type]  # SynthConfig checks the length
    except (ValueError, SynthError) as exc:
        message = exc if isinstance(exc, SynthError) else "it must be three numbers"
        raise InvalidInputError(f"--split {split!r} is not usable: {message}") from None

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
                config=config,
                stores=stores,
                overwrite=overwrite,
                progress=progress,
                workers=workers,
            )
        except SynthError as exc:
            raise InvalidInputError(str(exc)) from None
    rows = [
        (split, summary.stores[split], summary.videos[split], summary.queries[split])
        for split in ("train", "val", "test")
    ]
    emit(
        summary,
        as_json,
        lambda console: console.print(
            table(
                f"{summary.root}: {summary.skus} SKUs in {stores} store(s), "
                f"{summary.seconds_of_video / 60:.1f} min of video in "
                f"{summary.elapsed_seconds:.1f} s",
                ("split", "stores", "videos", "queries"),
                rows,
            )
        ),
    )
