"""``activity_in_every_token``: the question's activity reaches every memory row of the
answer encoder's input, not only the activity token a scan reads first."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from model import LongVMNet, Memory, ModelConfig


def _encoder_inputs(cfg: ModelConfig, activity: int) -> torch.Tensor:
    """What the answer encoder receives ``(1, m + 1, d)`` for an object question."""
    torch.manual_seed(0)
    net = LongVMNet(cfg, pretrained_backbone=False)
    coder = net.encoder_decoder.train()  # the dense path: the encoder is called as a module
    m, cells = 32, cfg.tokens_per_frame
    g = torch.Generator().manual_seed(1)
    memory = Memory(
        torch.randn(1, m, cfg.backbone_channels, generator=g),
        (torch.arange(m) // cells)[None],
        (torch.arange(m) % cells)[None],
        torch.ones(1, m, dtype=torch.bool),
        torch.tensor([m // cells]),
    )
    seen: list[torch.Tensor] = []
    coder.encoder.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    steps = torch.arange(m // cells)[None]
    coder(coder.project_memory(memory), steps, torch.ones_like(steps, dtype=torch.bool),
          activity=torch.tensor([activity]))  # fmt: skip
    return seen[0].detach()


@pytest.mark.parametrize("mixer", ["attention", "mamba"])
def test_every_memory_row_depends_on_the_activity_only_with_the_option(mixer: str) -> None:
    plain = ModelConfig.preset("tiny", mixer=mixer)
    spread = dataclasses.replace(plain, activity_in_every_token=True)
    m = 32
    # without it, only the last row (the activity token) differs between two activities
    a, b = _encoder_inputs(plain, 0), _encoder_inputs(plain, 3)
    assert torch.equal(a[:, :m], b[:, :m]) and not torch.equal(a[:, m:], b[:, m:])
    # with it, every memory row differs, by the same vector: the activity's embedding
    a, b = _encoder_inputs(spread, 0), _encoder_inputs(spread, 3)
    shift = a[:, :m] - b[:, :m]  # (1, m, d)
    assert (shift.abs().sum(-1) > 0).all()
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)
    assert torch.allclose(shift[:, 0], a[:, m] - b[:, m], atol=1e-6)  # = the token's difference


def test_the_option_travels_with_the_checkpoint_and_is_off_in_older_ones(tmp_path: Path) -> None:
    cfg = ModelConfig.preset("tiny", mixer="mamba", activity_in_every_token=True)
    LongVMNet(cfg, pretrained_backbone=False).save(tmp_path / "run")
    assert LongVMNet.load(tmp_path / "run").cfg.activity_in_every_token is True
    assert ModelConfig.preset("tiny").activity_in_every_token is False
    # a checkpoint written before the option (no such key) reads as off: same answers
    config = tmp_path / "run" / "config.json"
    raw = json.loads(config.read_text())
    found = [k for k, v in raw.items() if isinstance(v, dict) and "activity_in_every_token" in v]
    for key in found:
        del raw[key]["activity_in_every_token"]
    raw.pop("activity_in_every_token", None)
    config.write_text(json.dumps(raw))
    assert "activity_in_every_token" not in config.read_text()
    assert LongVMNet.load(tmp_path / "run").cfg.activity_in_every_token is False
