"""`cartmem train` and `cartmem eval` on a two-video dataset (commands invoked directly)."""

from __future__ import annotations

import json
from pathlib import Path

import safetensors.torch
import torch
from click.testing import CliRunner

from app.cli.evaluate import evaluate
from app.cli.train import train
from app.errors import InvalidInputError
from model.synth import QueryConfig, SynthConfig, VideoConfig, generate_dataset


def _dataset(out: Path) -> Path:
    config = SynthConfig(
        num_skus=4,
        video=VideoConfig(width=96, height=72, fps=5),
        queries=QueryConfig(per_bucket=2, short_seconds=(4.0, 10.0), medium_seconds=(10.0, 20.0),
                            long_seconds=(20.0, float("inf"))),
        split=(0.5, 0.0, 0.5),
    )  # fmt: skip
    generate_dataset(out, videos=2, minutes=0.4, seed=5, config=config)
    return out


def test_train_then_eval(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "ds")
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(
        train,
        [
            "--data", str(data), "--out", str(out), "--epochs", "1", "--threads", "1",
            "--memory-size", "128", "--token-standardisation", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["memory_size"] == 128 and config["token_standardisation"] is True
    weights = safetensors.torch.load_file(str(out / "model.safetensors"))
    spread = weights["encoder_decoder.project.channel_std"]  # fit on the training video
    assert torch.equal(spread, weights["sampler.project.channel_std"])
    assert not torch.equal(spread, torch.ones_like(spread))
    first = json.loads(result.stdout.splitlines()[0])  # the per-evaluation line
    assert first["epoch"] == 1 and "loss" in first["train"]
    assert (out / "model.safetensors").is_file() and (out / "train_state.json").is_file()

    for writer in ("neural", "merge"):
        result = runner.invoke(
            evaluate,
            ["--data", str(data), "--checkpoint", str(out), "--writer", writer, "--json"],
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["writer"] == writer and report["split"] == "test"
        metrics = {"recall@1x", "recall@3x", "swap-reject", "gt-vIoU>0.3", "tIoU>0.3"}
        assert set(report["percent"]) == metrics
        assert "baselines" in report

    larger = runner.invoke(
        evaluate, ["--data", str(data), "--checkpoint", str(out), "--memory-size", "512", "--json"]
    )
    assert larger.exit_code == 0, larger.output
    assert json.loads(larger.stdout)["queries"] == report["queries"]

    table = runner.invoke(evaluate, ["--data", str(data), "--checkpoint", str(out), "--baselines"])
    assert table.exit_code == 0, table.output
    assert "recall@1x" in table.stdout and "trivial baselines" in table.stdout
    assert "swap-reject" in table.stdout

    both = runner.invoke(
        evaluate, ["--data", str(data), "--checkpoint", str(out), "--rereading", "--json"]
    )
    assert both.exit_code == 0, both.output
    report = json.loads(both.stdout)
    reread = report["rereading"]
    assert reread["writer"] == "re-reading" and reread["queries"] == report["queries"]
    assert set(reread["percent"]) == set(report["percent"])


def test_domain_errors_become_one_sentence(tmp_path: Path) -> None:
    # The command raises InvalidInputError; the cartmem group prints it and exits 1.
    runner = CliRunner()
    result = runner.invoke(train, ["--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, InvalidInputError)
    assert "dataset.json" in str(result.exception)
    result = runner.invoke(
        evaluate, ["--data", str(tmp_path), "--checkpoint", str(tmp_path / "missing")]
    )
    assert isinstance(result.exception, InvalidInputError)
    assert "config.json" in str(result.exception)
