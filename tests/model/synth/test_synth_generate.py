"""generate_dataset: files, determinism per seed, splits by video, argument checks."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from model.synth import (
    FORMAT_VERSION,
    SPLITS,
    OutputExistsError,
    SynthConfig,
    SynthConfigError,
    decode_video,
    generate_dataset,
)
from model.synth.generate import plan_videos, split_counts


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_writes_the_documented_layout(synth_data) -> None:
    root, ds = synth_data.root, synth_data.dataset
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["seed"] == synth_data.seed
    assert set(meta["splits"]) == set(SPLITS)
    for video_id, annotation in ds.videos.items():
        assert (root / "videos" / f"{video_id}.mp4").is_file()
        assert (root / "annotations" / f"{video_id}.json").is_file()
        assert annotation.generator is not None and annotation.seed is not None
    for split in SPLITS:
        assert (root / "queries" / f"{split}.jsonl").is_file()
    assert len(list((root / "catalog").glob("SKU-*.png"))) == synth_data.config.num_skus


def test_same_seed_gives_identical_dataset(synth_data, synth_data_again) -> None:
    first, second = _files(synth_data.root), _files(synth_data_again.root)
    assert first.keys() == second.keys()
    for name in first:
        if not name.endswith(".mp4"):
            assert first[name] == second[name], name
    for video_id in synth_data.dataset.videos:
        a = decode_video(synth_data.dataset.video_path(video_id), 10)
        b = decode_video(synth_data_again.dataset.video_path(video_id), 10)
        assert np.array_equal(a, b), video_id
    # Single-threaded x264 makes even the encoded bytes repeat.
    assert all(first[n] == second[n] for n in first if n.endswith(".mp4"))


def test_other_seed_gives_other_dataset(synth_data, synth_data_other_seed) -> None:
    for video_id, annotation in synth_data.dataset.videos.items():
        other = synth_data_other_seed.dataset.videos[video_id]
        assert annotation.seed != other.seed
        assert annotation.spans != other.spans
    a = decode_video(synth_data.dataset.video_path("train-0000"), 1)
    b = decode_video(synth_data_other_seed.dataset.video_path("train-0000"), 1)
    assert np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() > 10


def test_split_is_by_video_and_disjoint(synth_data) -> None:
    ds = synth_data.dataset
    ids = [v for split in SPLITS for v in ds.splits[split]]
    assert len(ids) == len(set(ids)) == 3
    assert {split: len(ds.splits[split]) for split in SPLITS} == {"train": 1, "val": 1, "test": 1}
    for split in SPLITS:
        for video_id in ds.splits[split]:
            assert ds.videos[video_id].split == split
            assert all(q.video_id in ds.splits[split] for q in ds.queries[split])


def test_held_out_seeds_are_never_training_seeds() -> None:
    plans = plan_videos(videos=40, minutes=1, seed=11, config=SynthConfig())
    seeds = {split: {p.seed for p in plans if p.split == split} for split in SPLITS}
    assert len(seeds["train"]) == 28 and len(seeds["val"]) == 6 and len(seeds["test"]) == 6
    assert not seeds["train"] & (seeds["val"] | seeds["test"])
    # More videos only adds videos: the first ones keep their seeds.
    more = plan_videos(videos=60, minutes=1, seed=11, config=SynthConfig())
    assert {(p.video_id, p.seed) for p in plans} <= {(p.video_id, p.seed) for p in more}


def test_held_out_config_draws_the_test_sessions_of_the_store() -> None:
    """The demo and the reconciliation eval draw sessions a model trained on the seed's
    train split never saw: the same videos as the test split of the full dataset."""
    held_out = plan_videos(videos=3, minutes=1, seed=11, config=SynthConfig.held_out())
    full = plan_videos(videos=40, minutes=1, seed=11, config=SynthConfig())
    assert {p.split for p in held_out} == {"test"}
    assert {(p.video_id, p.seed) for p in held_out} <= {(p.video_id, p.seed) for p in full}


@pytest.mark.parametrize(
    ("videos", "expected"),
    [
        (1, (1, 0, 0)),
        (2, (2, 0, 0)),
        (3, (1, 1, 1)),
        (10, (7, 2, 1)),
        (20, (14, 3, 3)),
        (100, (70, 15, 15)),
    ],
)
def test_split_counts(videos: int, expected: tuple[int, int, int]) -> None:
    counts = split_counts(videos, (0.7, 0.15, 0.15))
    assert counts == expected and sum(counts) == videos


def test_progress_counts_frames_up_to_the_total(synth_data) -> None:
    calls = synth_data.progress
    total = sum(v.num_frames for v in synth_data.dataset.videos.values())
    assert calls[-1] == (total, total)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(calls))
    assert len(calls) >= total // 10  # at least once per second of video


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    small = dict(videos=1, minutes=0.1, seed=0, config=SynthConfig(num_skus=3))
    generate_dataset(tmp_path, **small)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        generate_dataset(tmp_path, **small)
    generate_dataset(tmp_path, overwrite=True, **small)
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only its own files are replaced
    assert (tmp_path / "dataset.json").is_file()


@pytest.mark.parametrize(("videos", "minutes"), [(0, 1.0), (2, 0.01), (2, float("nan"))])
def test_rejects_impossible_sizes(tmp_path: Path, videos: int, minutes: float) -> None:
    with pytest.raises(SynthConfigError):
        generate_dataset(tmp_path, videos=videos, minutes=minutes, seed=0)
    assert not (tmp_path / "dataset.json").exists()


def test_rejects_fewer_than_one_worker(tmp_path: Path) -> None:
    with pytest.raises(SynthConfigError, match="workers must be at least 1, not 0"):
        generate_dataset(tmp_path, videos=2, minutes=0.2, seed=0, workers=0)
    assert not (tmp_path / "dataset.json").exists()
