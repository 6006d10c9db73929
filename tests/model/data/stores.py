"""A tiny multi-store dataset for the data and training tests: three stores (the synth
tests' tiny catalogs and scripts, on smaller frames), two training stores and one
validation store, one 30 s video each (seconds to draw)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from model.synth import VideoConfig, generate_dataset
from tests.model.synth.conftest import TINY

STORES = 3
CONFIG = dataclasses.replace(
    TINY, video=VideoConfig(width=96, height=72, fps=5), split=(2.0, 1.0, 0.0)
)


def make_store_dataset(out: Path, videos: int = STORES) -> Path:
    """``videos`` spread over the stores: S001 and S002 train, S003 validation."""
    generate_dataset(out, videos=videos, minutes=0.5, seed=3, config=CONFIG, stores=STORES)
    return out
