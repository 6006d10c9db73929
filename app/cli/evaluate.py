"""`cartmem eval`: a checkpoint's metrics on a dataset split, per window bucket."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.cli._output import emit, json_option, table
from app.errors import InvalidInputError

_BUCKETS = ("short", "medium", "long", "all")
_METRICS = ("recall@1x", "recall@3x", "swap-reject", "gt-vIoU>0.3", "tIoU>0.3")
_KIND = {
    "recall@1x": "activity",
    "recall@3x": "activity",
    "swap-reject": "activity",
    "gt-vIoU>0.3": "object",
}


@click.command(name="eval")
@click.option("--data", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Checkpoint directory (default: the shipped tiny model).",
)
@click.option("--writer", type=click.Choice(["neural", "random", "merge"]), default=None,
              help="Memory writer (default: the checkpoint's).")  # fmt: skip
@click.option("--split", default="test", show_default=True)
@click.option("--baselines", is_flag=True, help="Also print the trivial baselines' table.")
@click.option("--rereading", is_flag=True,
              help="Also answer the queries by re-reading each window (no memory).")  # fmt: skip
@click.option("--cache", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Token cache (default DATA/.cache/tokens).")  # fmt: skip
@click.option("--memory-size", type=click.IntRange(1), default=None,
              help="Tokens kept per session (default: the checkpoint's).")  # fmt: skip
@click.option("--backbone-autocast", type=click.Choice(["off", "bf16", "fp16"]), default="off",
              show_default=True,
              help="Run the backbone at this precision (what autocast costs).")  # fmt: skip
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch.")
@json_option
def evaluate(
    data: Path,
    checkpoint: Path | None,
    writer: str | None,
    split: str,
    baselines: bool,
    rereading: bool,
    cache: Path | None,
    memory_size: int | None,
    backbone_autocast: str,
    threads: int | None,
    as_json: bool,
) -> None:
    """Read each video of the split once into memory, answer every query from memory only."""
    import torch  # late: torch loads slowly and most commands never need it

    from model.backbone_run import BackboneRun
    from model.errors import ModelError
    from model.evaluate import evaluate_checkpoint
    from model.evaluate.metrics import AGE_BUCKETS
    from model.shipped import default_checkpoint

    if threads is not None:
        torch.set_num_threads(threads)
    try:
        checkpoint = checkpoint or default_checkpoint()
        with click.progressbar(length=1, label="videos", file=sys.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.length = total
                if done < bar.pos:
                    bar.pos = 0
                bar.update(done - bar.pos)

            report = evaluate_checkpoint(
                data,
                checkpoint,
                writer=writer,
                split=split,
                cache_dir=cache,
                progress=progress,
                rereading=rereading,
                memory_size=memory_size,
                backbone_run=BackboneRun(autocast=backbone_autocast),
            )
    except ModelError as exc:
        raise InvalidInputError(str(exc)) from None

    def human(console) -> None:
        result = report.result
        title = (
            f"{result.writer} writer on {result.split}: {result.videos} videos, "
            f"{result.queries} queries ({report.checkpoint})"
        )
        console.print(metrics_table(title, result.summary.percent, result.summary.counts))
        if result.by_age is not None:
            console.print(
                metrics_table(
                    "by how long before the session's end the window closed",
                    result.by_age.percent,
                    result.by_age.counts,
                    (*AGE_BUCKETS, "all"),
                )
            )
        if report.rereading is not None:
            reread = report.rereading
            console.print(
                metrics_table(
                    "per-query re-reading baseline (each window's own frames, no memory; "
                    "speed: `cartmem bench speedup`)",
                    reread.summary.percent,
                    reread.summary.counts,
                )
            )
        if baselines:
            summary = report.baselines
            console.print(
                metrics_table(
                    "trivial baselines (most frequent activity, whole frame, whole window)",
                    summary.percent,
                    summary.counts,
                )
            )

    emit(report.to_dict(), as_json, human)


def metrics_table(title: str, percent: dict, counts: dict, buckets=_BUCKETS):
    """Rows: metrics; columns: buckets (window lengths by default); cells: percent (queries
    counted)."""
    rows = []
    for name in _METRICS:
        cells = []
        for bucket in buckets:
            value = percent.get(name, {}).get(bucket)
            n = counts.get(name, {}).get(bucket, 0)
            cells.append("-" if value is None else f"{value:.1f} ({n})")
        rows.append((f"{_KIND.get(name, 'time')} {name}", *cells))
    return table(title, ("metric", *buckets), rows)
