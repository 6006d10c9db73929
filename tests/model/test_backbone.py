import dataclasses
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from model import ConfigError, LongVMNet, ModelConfig
from model.backbone import Backbone


def _write_weights(path: Path, name: str, seed: int) -> dict[str, torch.Tensor]:
    """A randomly initialised timm model's state_dict (classifier included), as safetensors."""
    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in timm.create_model(name).state_dict().items()}
    save_file(state, str(path))
    return state


def test_weights_load_from_a_local_file(tmp_path: Path, tiny_cfg: ModelConfig) -> None:
    weights = tmp_path / "backbone.safetensors"
    state = _write_weights(weights, tiny_cfg.backbone, seed=123)
    cfg = dataclasses.replace(tiny_cfg, backbone_weights_file=str(weights))
    loaded = Backbone(cfg).model.state_dict()
    assert set(loaded) < set(state)  # the classifier was dropped (num_classes=0)
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    fresh = Backbone(tiny_cfg).model.state_dict()  # no file: a different (random) init
    assert not all(torch.equal(fresh[k], state[k]) for k in fresh if k.endswith("weight"))


def test_a_missing_weights_file_is_a_config_error(tmp_path: Path, tiny_cfg: ModelConfig) -> None:
    cfg = dataclasses.replace(tiny_cfg, backbone_weights_file=str(tmp_path / "nope.pth"))
    with pytest.raises(ConfigError, match="does not exist"):
        Backbone(cfg)


def test_a_config_that_mismatches_the_backbone_fails_at_build(tiny_cfg: ModelConfig) -> None:
    with pytest.raises(ConfigError, match="tokens"):
        Backbone(dataclasses.replace(tiny_cfg, grid=(7, 7)))


def test_frames_become_tokens_of_the_configured_grid(tiny_net: LongVMNet, make_frames) -> None:
    cfg = tiny_net.cfg
    tokens = tiny_net.encode_frames(make_frames(2, 3, h=37, w=53))  # odd sizes are resized
    assert tokens.shape == (2, 3, cfg.tokens_per_frame, cfg.backbone_channels)
    assert tokens.dtype == torch.float32 and torch.isfinite(tokens).all()
    assert not tokens.requires_grad


def test_tokens_are_in_row_major_cell_order(tiny_net: LongVMNet) -> None:
    backbone = tiny_net.backbone
    rows, cols, channels = 3, 4, 2
    grid = torch.arange(rows * cols, dtype=torch.float32).view(1, 1, rows, cols)
    features = grid.expand(1, channels, rows, cols)  # NCHW; value = row * cols + col
    tokens = backbone._tokens(features)
    assert tokens.shape == (1, rows * cols, channels)
    assert torch.equal(tokens[0, :, 0], torch.arange(rows * cols, dtype=torch.float32))


def test_preprocessing_follows_timms_data_config(tiny_net: LongVMNet) -> None:
    backbone = tiny_net.backbone
    data_cfg = timm.data.resolve_data_config({}, model=backbone.model)
    frame = torch.full((1, 20, 30, 3), 200, dtype=torch.uint8)
    x = backbone.preprocess(frame)
    assert x.shape == (1, 3, 128, 128)
    expected = (200 / 255 - torch.tensor(data_cfg["mean"])) / torch.tensor(data_cfg["std"])
    assert torch.allclose(x[0, :, 64, 64], expected, atol=1e-4)


def test_backbone_stays_frozen_in_training_mode(tiny_cfg: ModelConfig, make_frames) -> None:
    net = LongVMNet(tiny_cfg).train()
    assert not any(p.requires_grad for p in net.backbone.parameters())
    assert not net.backbone.model.training  # batch norm keeps its running statistics
    before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    net.encode_frames(make_frames(1, 4))
    after = net.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_rejects_frames_that_are_not_rgb_uint8(tiny_net: LongVMNet) -> None:
    with pytest.raises(ValueError, match="uint8"):
        tiny_net.encode_frames(np.zeros((1, 2, 8, 8, 3), dtype=np.float32))
