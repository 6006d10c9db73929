"""A two-video synthetic dataset and a shrunken tiny network, small enough for unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from model import ModelConfig
from model.synth import QueryConfig, SynthConfig, VideoConfig, generate_dataset

#: Tiny preset made smaller still: 4-frame clips, 32-token memory, 1-layer transformers.
SMALL_MODEL = dict(
    clip_frames=4,
    memory_size=32,
    d_model=32,
    ffn_dim=64,
    sampler_layers=1,
    encoder_layers=1,
    decoder_layers=1,
    dropout=0.0,
)


def make_dataset(out: Path, split: tuple[float, float, float] = (0.5, 0.0, 0.5)) -> Path:
    """Two 30 s videos (5 FPS, 96 x 72), six SKUs, windows scaled to the short videos."""
    config = SynthConfig(
        num_skus=6,
        video=VideoConfig(width=96, height=72, fps=5),
        queries=QueryConfig(
            per_bucket=4,
            short_seconds=(4.0, 10.0),
            medium_seconds=(10.0, 20.0),
            long_seconds=(20.0, float("inf")),
        ),
        split=split,
    )
    generate_dataset(out, videos=2, minutes=0.5, seed=3, config=config)
    return out


@pytest.fixture(scope="session")
def small_cfg() -> ModelConfig:
    return ModelConfig.preset("tiny", **SMALL_MODEL)


@pytest.fixture(scope="session")
def small_overrides() -> dict:
    """``ModelConfig.preset("tiny", **small_overrides)`` is ``small_cfg``."""
    return dict(SMALL_MODEL)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only: one training video and one validation video (tests that write copy it)."""
    return make_dataset(tmp_path_factory.mktemp("dataset") / "ds", split=(0.5, 0.5, 0.0))


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """These tensors are small: one thread beats two, and by far on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
