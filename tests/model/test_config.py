import dataclasses
import json

import pytest

from model import DEFAULT_ACTIVITY_LABELS, ConfigError, ModelConfig


def test_paper_preset_has_the_papers_sizes() -> None:
    cfg = ModelConfig.preset("paper")
    assert cfg.backbone == "swinv2_cr_small_ns_224"
    assert (cfg.image_size, cfg.backbone_channels, cfg.tokens_per_frame) == (224, 768, 49)
    assert (cfg.clip_frames, cfg.memory_size, cfg.fps) == (120, 5880, 1.0)
    assert cfg.memory_size == cfg.clip_tokens  # "the same capacity of tokens"
    assert (cfg.d_model, cfg.dropout, cfg.mlp_layers) == (256, 0.2, 1)
    assert cfg.sampler_layers == cfg.encoder_layers == cfg.decoder_layers == 2  # N = 2
    assert (cfg.loss_box_l1, cfg.loss_box_giou) == (5.0, 2.0)


@pytest.mark.parametrize("name", ["paper", "small", "tiny"])
def test_every_preset_is_valid_and_uses_the_retail_labels(name: str) -> None:
    cfg = ModelConfig.preset(name)
    assert cfg.name == name
    assert cfg.activity_labels == DEFAULT_ACTIVITY_LABELS
    assert cfg.num_activities == 5
    assert cfg.writer == "neural"


def test_tiny_is_smaller_than_small_is_smaller_than_paper() -> None:
    tiny, small, paper = (ModelConfig.preset(n) for n in ("tiny", "small", "paper"))
    assert tiny.memory_size < small.memory_size < paper.memory_size
    assert tiny.d_model < small.d_model < paper.d_model


def test_config_is_frozen() -> None:
    cfg = ModelConfig.preset("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.memory_size = 3


def test_json_round_trip_is_exact() -> None:
    cfg = ModelConfig.preset("small", activity_labels=("a", "b"), backbone_weights_file="/w.pth")
    back = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    mamba = ModelConfig.preset("paper", mixer="mamba", ssm_state=8)
    assert ModelConfig.from_dict(json.loads(json.dumps(mamba.to_dict()))) == mamba
    assert isinstance(back.grid, tuple) and isinstance(back.activity_labels, tuple)


def test_preset_overrides_replace_fields() -> None:
    cfg = ModelConfig.preset("tiny", memory_size=64, writer="merge")
    assert (cfg.memory_size, cfg.writer) == (64, "merge")
    assert ModelConfig.preset("tiny").memory_size != 64  # the preset itself is untouched


@pytest.mark.parametrize(
    "overrides",
    [
        {"writer": "fancy"},
        {"memory_size": 0},
        {"num_heads": 3},
        {"dropout": 1.0},
        {"activity_labels": ("a", "a")},
        {"backbone": "hf-hub:timm/resnet18"},
        {"fps": 0.0},
        {"mixer": "rnn"},
        {"mixer": "mamba", "ssm_head_dim": 48},  # does not divide 2 * 64
        {"ssm_state": 0},
    ],
)
def test_invalid_fields_are_rejected(overrides: dict) -> None:
    with pytest.raises(ConfigError):
        ModelConfig.preset("tiny", **overrides)


def test_unknown_preset_and_unknown_field_are_rejected() -> None:
    with pytest.raises(ConfigError, match="Unknown model preset"):
        ModelConfig.preset("huge")
    values = ModelConfig.preset("tiny").to_dict() | {"colour": "red"}
    with pytest.raises(ConfigError, match="unknown fields"):
        ModelConfig.from_dict(values)
