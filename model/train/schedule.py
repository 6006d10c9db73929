"""Schedules over training progress ``f`` in [0, 1] (epochs done / epochs): Gumbel temperature
and learning-rate factor. Functions of progress, not of a stored state, so a resumed run
continues exactly where it stopped."""

from __future__ import annotations

import math

from model.train.config import TrainConfig


def temperature(cfg: TrainConfig, progress: float) -> float:
    """Linear from ``temperature_start`` (1.5: explore early, paper) to ``temperature_end``."""
    f = min(max(progress, 0.0), 1.0)
    return cfg.temperature_start + (cfg.temperature_end - cfg.temperature_start) * f


def lr_factor(cfg: TrainConfig, progress: float) -> float:
    """Linear warm-up over ``warmup``, then cosine decay to ``min_lr_factor``."""
    f = min(max(progress, 0.0), 1.0)
    if cfg.warmup > 0 and f < cfg.warmup:
        return max(f / cfg.warmup, 1e-3)
    span = max(1.0 - cfg.warmup, 1e-9)
    cosine = 0.5 * (1.0 + math.cos(math.pi * (f - cfg.warmup) / span))
    return cfg.min_lr_factor + (1.0 - cfg.min_lr_factor) * cosine
