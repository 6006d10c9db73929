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
