"""`cartmem train`: train a Long-VMNet on a dataset directory (the format of `cartmem synth`)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from app.cli._output import emit, json_option, table
from app.errors import InvalidInputError

_DIR = click.Path(path_type=Path, file_okay=False)


@click.command()
@click.option("--data", required=True, type=_DIR, help="Dataset directory.")
@click.option("--preset", type=click.Choice(["tiny", "small", "paper"]), default="tiny")
@click.option("--out", required=True, type=_DIR, help="Where the checkpoint and logs go.")
@click.option("--writer", type=click.Choice(["neural", "random"]), default="neural")
@click.option("--no-continual", is_flag=True, help="Train without the online continual loss.")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Default: 5.")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Videos per batch.")
@click.option(
    "--queries-per-clip",
    type=click.IntRange(1),
    default=None,
    help="Queries asked of each freshly written memory per step (default: 8).",
)
@click.option(
    "--swap-negatives",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Share of positive activity questions that also get a swapped-product twin "
    "(the same window, a product nobody touched: answer nothing). Default: 0.",
)
@click.option(
    "--time-shift",
    type=click.IntRange(min=0),
    default=None,
    help="Start each training video at a random memory step up to this one, so that the "
    "steps of long sessions are trained on (e.g. 3600: an hour at 1 fps). Default: 0.",
)
@click.option(
    "--loss-activity",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Weight of the activity loss (default: the preset's, or --init's config).",
)
@click.option(
    "--loss-sampler-evidence",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Weight of the sampler's evidence loss, 0 = the paper's end-to-end sampler "
    "(default: the preset's, or --init's config).",
)
@click.option(
    "--loss-activity-steps",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Weight of the per-step activity loss, 0 = the paper's window-level loss only "
    "(default: the preset's, or --init's config).",
)
@click.option(
    "--memory-size",
    type=click.IntRange(1),
    default=None,
    help="Tokens kept per session, m (default: the preset's, or --init's config); it "
    "shapes no weight, so it may differ from --init's.",
)
@click.option(
    "--mixer",
    type=click.Choice(["attention", "mamba"]),
    default=None,
    help="Token mixer of the sampler and the answer encoder (default: the preset's, or "
    "--init's config; another than --init's starts those layers fresh).",
)
@click.option(
    "--activity-in-every-token",
    is_flag=True,
    default=False,
    help="Add the question's activity to every memory token of the answer encoder, not only "
    "as a token of its own (for --mixer mamba, whose scans carry one token's information "
    "through a decaying state).",
)
@click.option(
    "--token-standardisation",
    is_flag=True,
    default=False,
    help="Standardise each backbone channel by its mean and spread over the training "
    "videos' tokens before the projections' layer norm (the statistics are fit once and "
    "kept in the checkpoint).",
)
@click.option(
    "--query-fusion",
    type=click.Choice(["encoder", "decoder"]),
    default=None,
    help="Where a question meets the memory: 'encoder' (the paper: every question "
    "re-encodes the memory) or 'decoder' (the memory is encoded once, the question "
    "applied to what the decoder reads). Default: the preset's, or --init's config.",
)
@click.option(
    "--decoder-self-radius",
    type=click.IntRange(-1),
    default=None,
    help="Decoder steps attend to the steps within this many of them only; -1: the whole "
    "window (default: the preset's, or --init's config).",
)
@click.option(
    "--memory-encoder-radius",
    type=click.IntRange(-1),
    default=None,
    help="With --query-fusion decoder: a memory token's encoder attention reads the tokens "
    "within this many steps of it only; -1: the whole memory.",
)
@click.option(
    "--glance-layers",
    type=click.IntRange(0),
    default=None,
    help="With --query-fusion decoder: layers in which the question's own tokens read the "
    "whole memory before the decoder reads them (default: the preset's, or --init's).",
)
@click.option("--resume", type=_DIR, default=None, help="Continue the run saved in this directory.")
@click.option(
    "--init",
    type=_DIR,
    default=None,
    help="Start from this checkpoint's weights (e.g. a backbone "
    "pretrained with `python -m model.train.pretrain_backbone`).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--cache", type=_DIR, default=None, help="Token cache (default DATA/.cache/tokens).")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch.")
@json_option
def train(
    data: Path,
    preset: str,
    out: Path,
    writer: str,
    no_continual: bool,
    epochs: int | None,
    batch_size: int | None,
    queries_per_clip: int | None,
    swap_negatives: float | None,
    time_shift: int | None,
    loss_activity: float | None,
    loss_sampler_evidence: float | None,
    loss_activity_steps: float | None,
    memory_size: int | None,
    mixer: str | None,
    activity_in_every_token: bool,
    token_standardisation: bool,
    query_fusion: str | None,
    decoder_self_radius: int | None,
    memory_encoder_radius: int | None,
    glance_layers: int | None,
    resume: Path | None,
    init: Path | None,
    seed: int,
    cache: Path | None,
    threads: int | None,
    as_json: bool,
) -> None:
    """Train on DATA's train split; one JSON line of validation metrics per epoch on stdout."""
    import torch  # late: torch loads slowly and most commands never need it

    from model.errors import ModelError
    from model.train import TrainConfig, read_train_config
    from model.train import train as run_training

    if threads is not None:
        torch.set_num_threads(threads)
    try:
        if resume is not None:
            config = read_train_config(resume)  # the run continues with its own settings
            if epochs is not None:
                config = dataclasses.replace(config, epochs=epochs)
        else:
            config = TrainConfig(
                preset=preset, writer=writer, continual=not no_continual, seed=seed
            )
            changes: dict[str, Any] = {
                "epochs": epochs,
                "batch_size": batch_size,
                "queries_per_clip": queries_per_clip,
                "swap_negatives": swap_negatives,
                "time_shift": time_shift,
            }
            config = dataclasses.replace(
                config, **{k: v for k, v in changes.items() if v is not None}
            )
        err = sys.stderr
        with click.progressbar(length=1, label="epoch 1", file=err) as bar:

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            def log(record: dict) -> None:
                click.echo(json.dumps(record, sort_keys=True))  # one line per evaluation
                bar.label = f"epoch {record['epoch'] + 1}"
                bar.pos = 0

            overriding = {
                "loss_activity": loss_activity,
                "loss_sampler_evidence": loss_sampler_evidence,
                "loss_activity_steps": loss_activity_steps,
                "memory_size": memory_size,
                "mixer": mixer,
                "activity_in_every_token": activity_in_every_token or None,
                "token_standardisation": token_standardisation or None,
                "query_fusion": query_fusion,
                "decoder_self_radius": decoder_self_radius,
                "memory_encoder_radius": memory_encoder_radius,
                "glance_layers": glance_layers,
            }
            overrides = {k: v for k, v in overriding.items() if v is not None} or None
            result = run_training(
                data, out, config, resume=resume, init=init, overrides=overrides,
                cache_dir=cache, log=log, progress=progress,
            )  # fmt: skip
    except ModelError as exc:
        raise InvalidInputError(str(exc)) from None
    summary = {
        "out": str(result.out),
        "epochs": result.epochs,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
    }
    emit(
        summary,
        as_json,
        lambda console: console.print(
            table("trained", ("checkpoint", "epochs", "steps", "seconds"), [summary.values()])
        ),
    )
