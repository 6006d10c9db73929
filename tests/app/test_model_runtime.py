"""Which model the service loads: one network or a pair, and the version it stores."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.model_runtime import load_model, model_version, one_network
from app.settings import Settings
from model import LongVMNet
from model.pair import ModelPair


def test_a_pair_checkpoint_loads_as_a_pair_under_its_own_name(
    sqlite_settings: Settings, tiny_pair_checkpoint: Path, tiny_checkpoint: Path
) -> None:
    pair = load_model(
        dataclasses.replace(sqlite_settings, checkpoint_path=str(tiny_pair_checkpoint))
    )
    assert isinstance(pair.net, ModelPair)
    assert pair.version == model_version("tiny-pair", tiny_pair_checkpoint)
    assert pair.version.startswith("tiny-pair@") and pair.net.cfg.memory_size == 256 + 128
    one = load_model(dataclasses.replace(sqlite_settings, checkpoint_path=str(tiny_checkpoint)))
    assert isinstance(one.net, LongVMNet) and one.version.startswith("tiny@")
    assert one_network(one) == (one, one.net)
    lead_model, lead = one_network(pair)  # what the one-network benchmarks measure
    assert lead is pair.net.lead and lead_model.net is lead
    assert lead_model.version == one.version and lead_model.checkpoint == tiny_checkpoint.resolve()


def test_a_pair_naming_a_missing_member_is_refused_at_load(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "config.json").write_text(
        '{"format": "cartmem.pair", "format_version": 1, "name": "p", "lead": "a", "partner": "b"}'
    )
    from model.errors import CheckpointError

    with pytest.raises(CheckpointError, match="its lead 'a'"):
        load_model(dataclasses.replace(sqlite_settings, checkpoint_path=str(tmp_path)))
