import json
from pathlib import Path

from click.testing import CliRunner

from app.cli import main


def test_synth_writes_a_dataset_and_refuses_to_overwrite_it(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    runner = CliRunner()
    args = ["synth", "--out", str(out), "--videos", "2", "--minutes", "0.3", "--seed", "3"]
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert sum(summary["videos"].values()) == 2
    assert len(list((out / "videos").glob("*.mp4"))) == 2
    assert (out / "dataset.json").is_file()
    again = runner.invoke(main, args)
    assert again.exit_code == 1 and "Error:" in again.output and "Traceback" not in again.output
    replaced = runner.invoke(main, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert "SKUs" in replaced.stdout


def test_synth_split_draws_held_out_sessions_of_the_same_catalog(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["synth", "--videos", "3", "--minutes", "0.1", "--seed", "3", "--json"]
    usual = runner.invoke(main, [*base, "--out", str(tmp_path / "usual")])
    held = runner.invoke(main, [*base, "--out", str(tmp_path / "held"), "--split", "0,0,1"])
    assert usual.exit_code == 0 and held.exit_code == 0, usual.output + held.output
    assert json.loads(held.stdout)["videos"] == {"train": 0, "val": 0, "test": 3}
    catalog = [(tmp_path / d / "catalog.json").read_text() for d in ("usual", "held")]
    assert catalog[0] == catalog[1]  # same seed, same products
    bad = runner.invoke(main, [*base, "--out", str(tmp_path / "bad"), "--split", "1,x"])
    assert bad.exit_code == 1 and "--split" in bad.output and "Traceback" not in bad.output


def test_synth_stores_splits_by_store(tmp_path: Path) -> None:
    out = tmp_path / "stores"
    args = ["synth", "--out", str(out), "--videos", "3", "--minutes", "0.1", "--stores", "3"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["stores"] == {"train": 1, "val": 1, "test": 1} and summary["skus"] == 72
    meta = json.loads((out / "dataset.json").read_text())
    assert [(s["store"], s["split"]) for s in meta["stores"]] == [
        ("S001", "train"),
        ("S002", "val"),
        ("S003", "test"),
    ]
    assert meta["splits"]["test"] == ["test-S003-0000"]
    too_few = CliRunner().invoke(main, [*args, "--videos", "2", "--out", str(tmp_path / "x")])
    assert too_few.exit_code == 1 and "per store" in too_few.output


def test_synth_workers_through_python_dash_m_app(tmp_path: Path) -> None:
    """`python -m app synth --workers 2`: the spawned workers import `app.__main__` again
    and must not run the command a second time."""
    import subprocess
    import sys

    out = tmp_path / "ds"
    args = ["synth", "--out", str(out), "--videos", "2", "--minutes", "0.2", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "app", *args, "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum(json.loads(done.stdout)["videos"].values()) == 2
    assert sorted(p.name for p in (out / "videos").glob("*.mp4")) == [
        "train-0000.mp4",
        "train-0001.mp4",
    ]
