"""The training loop: it learns, it resumes where it stopped, it follows the paper's rules."""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from model import LongVMNet, ModelConfig, loss_weights, query_losses, weighted_sum
from model.channel_statistics import channel_statistics
from model.data import TokenCache, load_split
from model.data.batches import Step
from model.errors import CheckpointError, ConfigError
from model.evaluate import populate
from model.synth import read_dataset
from model.train import TrainConfig, read_train_config, train
from model.train.loop import batch_queries, build_net, remember, remember_all, replayed
from model.train.optim import make_optimizer
from model.train.schedule import lr_factor, temperature

_FAST = dict(batch_size=2, lr_sampler=3e-3, lr_rest=3e-3, warmup=0.0)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@torch.no_grad()
def _loss_on_training_queries(net: LongVMNet, dataset: Path, cache: Path) -> float:
    """Weighted loss of every training query, answered from an inference-written memory."""
    net.eval()
    data = load_split(
        read_dataset(dataset), "train", net.cfg, TokenCache(cache, net.cfg, net.backbone)
    )
    memories = populate(net, data)
    total = 0.0
    for video_id, examples in data.examples.items():
        queries = [e.query_at(0) for e in examples]
        targets = [e.target for e in examples]
        losses = query_losses(net.forward_queries(memories[video_id], queries), queries, targets)
        total += weighted_sum(losses, loss_weights(net.cfg)).item()
    return total


def train_and_measure(
    dataset: Path, config: TrainConfig, overrides: dict, work: Path
) -> tuple[float, float, list[dict], LongVMNet]:
    """Train on ``dataset`` into ``work/out``: the loss on the training queries before and
    after, the metrics lines and the trained net, loaded from the output directory."""
    torch.manual_seed(config.seed)  # the initial weights ``train`` starts from
    before = _loss_on_training_queries(
        LongVMNet(ModelConfig.preset("tiny", **overrides)), dataset, work / "cache"
    )
    lines: list[dict] = []
    result = train(
        dataset, work / "out", config, overrides=overrides, cache_dir=work / "cache",
        log=lines.append,
    )  # fmt: skip
    assert lines == _records(result.out)
    net = LongVMNet.load(result.out)  # the output directory is a checkpoint
    return before, _loss_on_training_queries(net, dataset, work / "cache"), lines, net


def test_a_short_run_lowers_the_loss(
    small_dataset: Path, small_overrides: dict, tmp_path: Path
) -> None:
    config = TrainConfig(epochs=12, eval_every=4, **_FAST)
    before, after, lines, net = train_and_measure(small_dataset, config, small_overrides, tmp_path)
    assert [r["epoch"] for r in lines] == [4, 8, 12]  # one JSON line per evaluation
    assert "recall@1x" in lines[-1]["val"] and lines[-1]["train"]["loss"] > 0
    assert net.cfg.memory_size == small_overrides["memory_size"] and net.cfg.writer == "neural"
    assert after < 0.7 * before, (before, after)


def test_a_short_run_with_the_mamba_mixer_lowers_the_loss(
    small_dataset: Path, small_overrides: dict, tmp_path: Path
) -> None:
    overrides = small_overrides | {"mixer": "mamba", "ssm_head_dim": 16}
    config = TrainConfig(epochs=8, eval_every=8, **_FAST)
    before, after, _lines, net = train_and_measure(small_dataset, config, overrides, tmp_path)
    assert net.cfg.mixer == "mamba"
    assert after < 0.7 * before, (before, after)


def test_a_short_run_with_the_question_fused_in_the_decoder_lowers_the_loss(
    small_dataset: Path, small_overrides: dict, tmp_path: Path
) -> None:
    overrides = small_overrides | {"query_fusion": "decoder", "decoder_self_radius": 2}
    config = TrainConfig(epochs=8, eval_every=8, **_FAST)
    before, after, _lines, net = train_and_measure(small_dataset, config, overrides, tmp_path)
    assert (net.cfg.query_fusion, net.cfg.decoder_self_radius) == ("decoder", 2)
    assert after < 0.7 * before, (before, after)


def test_resume_continues_from_the_saved_step_exactly(
    small_dataset: Path, small_overrides: dict, tmp_path: Path
) -> None:
    config = TrainConfig(epochs=2, **_FAST)
    kwargs = dict(overrides=small_overrides, cache_dir=tmp_path / "cache")
    straight = train(small_dataset, tmp_path / "straight", config, **kwargs)
    first = train(small_dataset, tmp_path / "resumed", config, stop_after=1, **kwargs)
    assert read_train_config(first.out) == config
    resumed = train(
        small_dataset, tmp_path / "resumed", config, resume=first.out, cache_dir=tmp_path / "cache"
    )
    steps = [r["step"] for r in _records(resumed.out)]
    assert steps == [first.steps, straight.steps] and resumed.steps == straight.steps
    a = safetensors.torch.load_file(str(straight.out / "model.safetensors"))
    b = safetensors.torch.load_file(str(resumed.out / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # optimizer, RNG and data order restored


def test_the_sampler_and_the_rest_have_their_own_learning_rates(small_cfg: ModelConfig) -> None:
    net = LongVMNet(small_cfg)
    optimizer = make_optimizer(net, TrainConfig(lr_sampler=1e-4, lr_rest=2e-3))
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["sampler"]["lr"] == 1e-4 and groups["rest"]["lr"] == 2e-3
    assert {id(p) for p in groups["sampler"]["params"]} == {id(p) for p in net.sampler.parameters()}
    backbone = {id(p) for p in net.backbone.parameters()}
    assert not backbone & {id(p) for g in optimizer.param_groups for p in g["params"]}


def test_temperature_anneals_from_one_and_a_half_to_one() -> None:
    config = TrainConfig()
    assert temperature(config, 0.0) == 1.5 and temperature(config, 1.0) == 1.0
    assert temperature(config, 0.5) == pytest.approx(1.25)
    assert lr_factor(config, 0.0) < 0.1 and lr_factor(config, config.warmup) == pytest.approx(1.0)
    assert lr_factor(config, 1.0) == pytest.approx(config.min_lr_factor)


class _Example:
    def __init__(self, name: str) -> None:
        self.name, self.target = name, name

    def query_at(self, row: int) -> tuple[str, int]:
        return (self.name, row)


def test_the_continual_loss_asks_the_last_p_queries_of_each_video_again() -> None:
    past: dict = {}
    a1, a2, a3, b1 = (_Example(n) for n in ("a1", "a2", "a3", "b1"))
    remember(past, [Step("a", 0, (a1,)), Step("b", 0, (b1,))], 2)
    remember(past, [Step("a", 1, (a2,))], 2)
    remember(past, [Step("a", 2, (a3,)), Step("b", 1)], 2)
    assert past["a"] == deque([a2, a3]) and past["b"] == deque([b1])  # the oldest dropped out
    a4 = _Example("a4")
    queries, targets = batch_queries([Step("b", 2), Step("a", 3, (a4,))], past)
    assert queries == [("b1", 0), ("a4", 1), ("a2", 1), ("a3", 1)]  # row = the video's memory
    assert targets == ["b1", "a4", "a2", "a3"]
    a5, a6 = _Example("a5"), _Example("a6")
    remember(past, [Step("a", 4, (a4, a5, a6))], 2)  # several in one step: the first stays
    assert past["a"] == deque([a3, a4])
    none: dict = {}
    remember(none, [Step("a", 0, (a1,))], 0)  # --no-continual: p = 0
    assert none == {}


def test_merge_has_nothing_to_train_and_configs_are_checked() -> None:
    with pytest.raises(ConfigError):
        TrainConfig(writer="merge")
    with pytest.raises(ConfigError):
        TrainConfig(epochs=0)
    assert TrainConfig(continual=False).past == 0 and TrainConfig().past == 2


def test_replay_draws_older_queries_of_the_same_video_only() -> None:
    a = [_Example(f"a{i}") for i in range(6)]
    b1 = _Example("b1")
    history: dict = {}
    remember_all(history, [Step("a", 0, tuple(a[:3])), Step("b", 0, (b1,))])
    remember_all(history, [Step("a", 1, tuple(a[3:]))])
    assert history == {"a": a, "b": [b1]}
    past = {"a": deque(a[4:])}  # the last p are asked anyway: never replayed
    rng = np.random.default_rng(0)
    for _ in range(20):
        drawn = replayed([Step("a", 2), Step("b", 1)], history, past, 3, rng)
        assert len(drawn["a"]) == 3 and len(set(map(id, drawn["a"]))) == 3
        assert set(drawn["a"]) <= set(a[:4]) and drawn["b"] == [b1]
    assert replayed([Step("a", 2)], history, past, 0, rng) == {}
    queries, _ = batch_queries([Step("a", 2, (a[0],))], past, {"a": [a[1]]})
    assert queries == [("a0", 0), ("a4", 0), ("a5", 0), ("a1", 0)]
    assert TrainConfig(continual=False).replay == 0 and TrainConfig().replay == 4


def test_init_with_another_mixer_keeps_the_backbone_and_starts_the_mixer_fresh(
    small_cfg: ModelConfig, tmp_path: Path
) -> None:
    torch.manual_seed(4)
    start = LongVMNet(small_cfg, pretrained_backbone=False)
    with torch.no_grad():  # a "pretrained" backbone and product match that must carry over
        next(start.backbone.parameters()).add_(1.0)
    start.save(tmp_path / "init")
    config = TrainConfig(preset="tiny")
    net = build_net(config, init=tmp_path / "init", overrides={"mixer": "mamba"})
    assert net.cfg.mixer == "mamba"
    for key, value in start.state_dict().items():
        if key.startswith(("backbone.", "encoder_decoder.match.")):
            assert torch.equal(net.state_dict()[key], value), key
    assert any("forward_scan" in key for key in net.state_dict())
    with pytest.raises(CheckpointError, match="does not match"):  # other changes still refused
        build_net(config, init=tmp_path / "init", overrides={"d_model": 64})


def _statistics(net: LongVMNet) -> list[torch.Tensor]:
    return [
        buffer
        for projection in (net.sampler.project, net.encoder_decoder.project)
        for buffer in (projection.channel_mean, projection.channel_std)
        if buffer is not None
    ]


def test_a_run_standardising_tokens_fits_the_training_videos_channel_statistics(
    small_dataset: Path, small_cfg: ModelConfig, tmp_path: Path
) -> None:
    torch.manual_seed(5)
    LongVMNet(small_cfg, pretrained_backbone=False).save(tmp_path / "init")  # no statistics
    result = train(
        small_dataset, tmp_path / "out", TrainConfig(epochs=1, **_FAST), init=tmp_path / "init",
        overrides={"token_standardisation": True}, cache_dir=tmp_path / "cache",
    )  # fmt: skip
    net = LongVMNet.load(result.out)
    cache = TokenCache(tmp_path / "cache", net.cfg, net.backbone)
    videos = load_split(read_dataset(small_dataset), "train", net.cfg, cache).tokens.values()
    mean, std = channel_statistics(videos)
    sampler_mean, sampler_std, coder_mean, coder_std = _statistics(net)
    for fitted, expected in ((sampler_mean, mean), (coder_mean, mean), (sampler_std, std),
                             (coder_std, std)):  # fmt: skip
        torch.testing.assert_close(fitted, expected)
    assert not torch.equal(std, torch.ones_like(std))


def test_a_run_from_a_standardising_checkpoint_keeps_its_statistics(
    small_dataset: Path, small_cfg: ModelConfig, tmp_path: Path
) -> None:
    """Its weights were trained on those statistics: refitting would move their inputs."""
    torch.manual_seed(6)
    start = LongVMNet(dataclasses.replace(small_cfg, token_standardisation=True))
    channels = small_cfg.backbone_channels
    mean, std = torch.linspace(-1, 1, channels), torch.linspace(0.5, 2, channels)
    start.fit_token_standardisation([torch.randn(3, 2, channels) * std + mean])
    kept = [b.clone() for b in _statistics(start)]
    start.save(tmp_path / "init")
    result = train(
        small_dataset, tmp_path / "out", TrainConfig(epochs=1, **_FAST), init=tmp_path / "init",
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    after = _statistics(LongVMNet.load(result.out))
    assert len(after) == 4 and all(torch.equal(a, b) for a, b in zip(after, kept, strict=True))
