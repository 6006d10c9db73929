"""The reconciliation benchmark's sessions: drawn once, read from --data, split chosen."""

from __future__ import annotations

import json
from pathlib import Path

from app.bench.reconcile_eval import make_trials
from model.synth import generate_dataset, read_dataset
from tests.small_synth import small_synth_config


def _draw(out: Path) -> Path:
    config = small_synth_config((0.0, 0.5, 0.5), per_bucket=2)
    generate_dataset(out, videos=4, minutes=0.5, seed=5, config=config, stores=2)
    return out


def test_trials_come_from_the_asked_split_of_a_drawn_dataset(tmp_path: Path) -> None:
    root = _draw(tmp_path / "ds")
    before = (root / "dataset.json").read_bytes()
    data = read_dataset(root)
    for split in ("val", "test"):
        trials, catalog = make_trials(root, 1, 0.5, seed=5, split=split)
        (trial,) = trials
        video_id = trial.session_id.removeprefix("eval-")
        assert video_id in data.splits[split]
        assert trial.planted in trial.basket
        # the session is checked for its own store's products, not the whole catalog
        assert trial.sold == data.skus_of(video_id) and trial.planted in trial.sold
        assert len(trial.sold) < len(data.catalog)
        assert trial.scans.get(trial.planted, 0) == trial.basket[trial.planted] - 1
        assert {p.sku for p in catalog} == {e.sku for e in data.catalog}
    assert (root / "dataset.json").read_bytes() == before  # used as drawn, not redrawn
    assert json.loads(before)["seed"] == 5
