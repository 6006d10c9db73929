"""Joining two store datasets: one's training stores, the other's validation stores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from model.synth import generate_dataset
from model.synth.errors import DatasetError
from model.synth.join import join_datasets, main
from model.synth.reader import read_dataset
from tests.model.data.stores import CONFIG, make_store_dataset


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two draws of seed 3: every store training (S001-S003), and S003 validation."""
    root = tmp_path_factory.mktemp("join")
    everything = root / "all-train"
    config = dataclasses.replace(CONFIG, split=(1.0, 0.0, 0.0))
    generate_dataset(everything, videos=3, minutes=0.5, seed=3, config=config, stores=3)
    return everything, make_store_dataset(root / "with-val")


def test_the_join_trains_on_the_first_and_validates_on_the_seconds_stores(
    drawn: tuple[Path, Path], tmp_path: Path
) -> None:
    everything, with_val = drawn
    assert join_datasets(everything, with_val, tmp_path / "joined") == (2, 1)
    joined = read_dataset(tmp_path / "joined")
    # S003 is the validation store: its training video in the first draw stays out
    assert {joined.videos[v].store for v in joined.splits["train"]} == {"S001", "S002"}
    assert [joined.videos[v].store for v in joined.splits["val"]] == ["S003"]
    assert {e.sku[:4] for e in joined.catalog} == {"S001", "S002", "S003"}
    source = read_dataset(with_val)
    (val_id,) = joined.splits["val"]
    assert joined.video_path(val_id).read_bytes() == source.video_path(val_id).read_bytes()
    assert joined.queries["val"] == source.queries["val"] and joined.queries["train"]
    counts = json.loads((tmp_path / "joined" / "dataset.json").read_text())["query_counts"]
    for split in ("train", "val"):
        assert sum(n for kind in counts[split].values() for n in kind.values()) == len(
            joined.queries[split]
        )


def test_the_join_refuses_an_existing_folder_and_a_single_store_dataset(
    drawn: tuple[Path, Path], tmp_path: Path, make_small_dataset
) -> None:
    everything, with_val = drawn
    (tmp_path / "taken").mkdir()
    with pytest.raises(DatasetError, match="exists"):
        join_datasets(everything, with_val, tmp_path / "taken")
    single = make_small_dataset(tmp_path / "single", split=(0.5, 0.5, 0.0))
    with pytest.raises(SystemExit) as exit_info:
        main(["--train", str(single), "--val", str(with_val), "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2 and not (tmp_path / "x").exists()
