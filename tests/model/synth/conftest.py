"""Tiny synthetic datasets shared by the synth tests (generated once per test session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from model.synth import (
    Dataset,
    QueryConfig,
    ScriptConfig,
    SynthConfig,
    generate_dataset,
    read_dataset,
)
from model.synth.catalog import make_catalog
from model.synth.video import VideoPlan, VideoWorld, build_world

#: Small enough for seconds of work: short pauses and even episode weights so that 30 s
#: videos hold every activity; bucket limits scaled down so that all three occur.
TINY = SynthConfig(
    num_skus=8,
    script=ScriptConfig(pause_seconds=(0.4, 1.2), episode_weights=(1.0, 1.0, 1.0, 1.0, 3.0, 1.0)),
    queries=QueryConfig(
        per_bucket=4,
        short_seconds=(4.0, 10.0),
        medium_seconds=(10.0, 20.0),
        long_seconds=(20.0, float("inf")),
    ),
)
SEED = 8
VIDEOS = 3
MINUTES = 0.5


@dataclass(frozen=True)
class Generated:
    root: Path
    dataset: Dataset
    progress: list[tuple[int, int]]
    seed: int
    config: SynthConfig


#: Multi-store datasets: three stores (one train, one val, one test), two short videos each.
STORES = 3
STORE_MINUTES = 0.2


def _generate(root: Path, seed: int, stores: int = 1, workers: int = 1) -> Generated:
    calls: list[tuple[int, int]] = []
    generate_dataset(
        root,
        videos=VIDEOS if stores == 1 else 2 * stores,
        minutes=MINUTES if stores == 1 else STORE_MINUTES,
        seed=seed,
        config=TINY,
        stores=stores,
        progress=lambda done, total: calls.append((done, total)),
        workers=workers,
    )
    return Generated(root, read_dataset(root), calls, seed, TINY)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _generate(tmp_path_factory.mktemp("synth_data") / "data", SEED)


@pytest.fixture(scope="session")
def synth_data_again(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """The same arguments a second time, into another directory."""
    return _generate(tmp_path_factory.mktemp("synth_data_again") / "data", SEED)


@pytest.fixture(scope="session")
def synth_data_other_seed(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _generate(tmp_path_factory.mktemp("tiny_other") / "data", SEED + 1)


@pytest.fixture(scope="session")
def store_data(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _generate(tmp_path_factory.mktemp("store_data") / "data", SEED, STORES)


@pytest.fixture(scope="session")
def store_data_in_three_processes(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """``store_data``'s arguments, its six videos drawn by three worker processes."""
    root = tmp_path_factory.mktemp("store_data_in_three_processes") / "data"
    return _generate(root, SEED, STORES, workers=3)


@pytest.fixture(scope="session")
def store_data_again(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _generate(tmp_path_factory.mktemp("store_data_again") / "data", SEED, STORES)


@pytest.fixture(scope="session")
def store_data_other_seed(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _generate(tmp_path_factory.mktemp("store_other") / "data", SEED + 1, STORES)


@pytest.fixture(scope="session")
def worlds(synth_data: Generated) -> dict[str, VideoWorld]:
    """Each video's world rebuilt from its seed, to re-render frames the tests inspect."""
    catalog = make_catalog(SEED, TINY.num_skus)
    return {
        video_id: build_world(VideoPlan(video_id, a.split, a.seed, a.num_frames), catalog, TINY)
        for video_id, a in synth_data.dataset.videos.items()
    }
