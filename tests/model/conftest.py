"""Shared fixtures for the model tests: the tiny preset, one network, frame factories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from model import LongVMNet, ModelConfig


@pytest.fixture(scope="session")
def tiny_cfg() -> ModelConfig:
    return ModelConfig.preset("tiny")


@pytest.fixture(scope="session")
def tiny_net(tiny_cfg: ModelConfig) -> LongVMNet:
    """A tiny network in eval mode, shared read-only: tests that change it build their own."""
    torch.manual_seed(0)
    return LongVMNet(tiny_cfg).eval()


@pytest.fixture
def make_frames() -> Callable[..., np.ndarray]:
    """``make_frames(b, t, seed=0, h=48, w=64)``: random RGB uint8 frames ``(b, t, h, w, 3)``."""

    def make(b: int, t: int, seed: int = 0, h: int = 48, w: int = 64) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, (b, t, h, w, 3), dtype=np.uint8)

    return make


@pytest.fixture
def make_tokens(tiny_cfg: ModelConfig) -> Callable[..., torch.Tensor]:
    """``make_tokens(b, t, seed=0)``: random tiny-preset backbone tokens ``(b, t, S, C)``."""

    def make(b: int, t: int | None = None, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        t = tiny_cfg.clip_frames if t is None else t
        shape = (b, t, tiny_cfg.tokens_per_frame, tiny_cfg.backbone_channels)
        return torch.randn(shape, generator=g)

    return make


# ---------------------------------------------------------------- small training fixtures
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


@pytest.fixture(scope="session")
def small_overrides() -> dict:
    """``ModelConfig.preset("tiny", **small_overrides)`` is ``small_cfg``."""
    return dict(SMALL_MODEL)


@pytest.fixture(scope="session")
def small_cfg() -> ModelConfig:
    return ModelConfig.preset("tiny", **SMALL_MODEL)


@pytest.fixture(scope="session")
def make_small_dataset():
    """Function: two 30 s videos (5 FPS, 96 x 72), six SKUs, windows scaled to them."""
    from model.synth import generate_dataset
    from tests.small_synth import small_synth_config

    def make(out: Path, split: tuple[float, float, float] = (0.5, 0.0, 0.5)) -> Path:
        config = small_synth_config(split)
        generate_dataset(out, videos=2, minutes=0.5, seed=3, config=config)
        return out

    return make
