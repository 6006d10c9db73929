import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from model import ActivityQuery, CheckpointError, LongVMNet, ModelConfig, ObjectQuery, TimeQuery
from model.checkpoint import FORMAT_VERSION
from model.config import MIXERS


def _queries() -> list:
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return [ActivityQuery(0, image, 0, 8), ObjectQuery(1, 2, 4, 9), TimeQuery(0, 1, image, 0, 20)]


@pytest.mark.parametrize("mixer", MIXERS)
def test_save_then_load_gives_identical_memories_and_answers(
    tmp_path: Path, tiny_cfg: ModelConfig, make_frames, mixer: str
) -> None:
    torch.manual_seed(3)
    net = LongVMNet(dataclasses.replace(tiny_cfg, mixer=mixer)).eval()
    video = make_frames(2, 20)
    loaded = LongVMNet.load(net.save(tmp_path / "ckpt"))
    memory = net.populate(video)
    assert loaded.populate(video).equal(memory)
    for a, b in zip(net.answer(memory, _queries()), loaded.answer(memory, _queries()), strict=True):
        assert repr(a) == repr(b)  # every number identical


def test_the_architecture_comes_from_the_file(tmp_path: Path, tiny_cfg: ModelConfig) -> None:
    cfg = dataclasses.replace(tiny_cfg, d_model=32, num_heads=2, activity_labels=("a", "b", "c"))
    LongVMNet(cfg).save(tmp_path)
    assert LongVMNet.load(tmp_path).cfg == cfg


def test_files_are_json_and_safetensors_with_the_backbone(
    tmp_path: Path, tiny_cfg: ModelConfig
) -> None:
    net = LongVMNet(tiny_cfg)
    with torch.no_grad():  # a "fine-tuned" backbone must travel with the checkpoint
        next(net.backbone.parameters()).add_(1.0)
    net.save(tmp_path)
    document = json.loads((tmp_path / "config.json").read_text())
    assert document["format_version"] == FORMAT_VERSION
    assert document["config"]["backbone"] == tiny_cfg.backbone
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
    assert any(k.startswith("backbone.") for k in keys) and any(
        k.startswith("sampler.") for k in keys
    )
    loaded = LongVMNet.load(tmp_path)
    assert torch.equal(next(loaded.backbone.parameters()), next(net.backbone.parameters()))
    assert not list(tmp_path.glob("*.tmp"))


def test_unreadable_checkpoints_raise_checkpoint_error(
    tmp_path: Path, tiny_cfg: ModelConfig
) -> None:
    with pytest.raises(CheckpointError, match=r"config\.json is missing"):
        LongVMNet.load(tmp_path / "nothing")
    LongVMNet(tiny_cfg).save(tmp_path)
    document = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(document | {"format_version": 99}))
    with pytest.raises(CheckpointError, match="format version 99"):
        LongVMNet.load(tmp_path)
    document["config"]["d_model"] = 128  # weights no longer fit the architecture
    (tmp_path / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="does not match"):
        LongVMNet.load(tmp_path)
