import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import AppContext
from app.cli.bench import bench
from app.settings import Settings

SECTIONS = ("speedup", "ingest", "queries", "memory")


def _positive(*values: float) -> bool:
    return all(isinstance(v, int | float) and v > 0 for v in values)


@pytest.mark.slow
def test_bench_quick_json_reports_every_section(tmp_path: Path, tiny_checkpoint: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", checkpoint_path=str(tiny_checkpoint), device="cpu"
    )
    out = tmp_path / "bench"
    # one thread: on a shared machine two threads wait on each other (4x slower under load)
    args = ["--quick", "--json", "--out", str(out), "--threads", "1"]
    result = CliRunner().invoke(bench, args, obj=AppContext(settings))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["quick"] is True and report["machine"]["logical_cores"] >= 1
    assert set(report["sections"]) == set(SECTIONS)
    assert json.loads((out / "bench.json").read_text())["sections"].keys() == set(SECTIONS)
    for name in SECTIONS:
        assert (out / f"{name}.json").is_file() and (out / f"{name}.png").is_file()
        assert report["sections"][name]["machine"]["cpu"]

    speedup = report["sections"]["speedup"]
    assert [row["questions"] for row in speedup["rows"]] == [10, 100]
    for row in speedup["rows"]:
        cartmem, baseline = row["cartmem"], row["baseline"]
        assert _positive(row["ratio"], cartmem["total_s"], baseline["total_s"])
        assert _positive(cartmem["decode_s"], cartmem["backbone_s"], cartmem["sampler_s"])
        assert _positive(cartmem["answer_s"], baseline["decode_s"], baseline["backbone_s"])
        assert baseline["sampler_s"] == 0  # the baseline keeps no memory
        assert row["baseline_timed"] >= min(row["questions"], 20)
        assert len(row["cartmem_runs_total_s"]) == 2  # before and after the baseline
    assert speedup["rows"][-1]["baseline_scaled"] is True  # 100 questions, 20 timed

    for run in report["sections"]["ingest"]["runs"]:
        assert _positive(run["decoded_frames_per_second"], run["device_bytes_per_session"])

    for row in report["sections"]["queries"]["rows"]:
        for side in (row["worker"], row["model_only"]):
            assert _positive(side["queries_per_second"], side["latency_p50_ms"])
            assert side["latency_p99_ms"] >= side["latency_p50_ms"]

    memory = report["sections"]["memory"]
    assert memory["flat"] is True
    for row in memory["rows"]:
        assert row["valid_tokens"] == memory["memory_size"]
        assert _positive(row["database_bytes"], row["device_bytes"], row["sampler_ms_per_clip"])


def test_bench_mixer_quick_times_both_mixers_in_child_processes(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", checkpoint_path=str(tiny_checkpoint), device="cpu"
    )
    out = tmp_path / "bench"
    args = ["mixer", "--quick", "--json", "--out", str(out), "--threads", "1"]
    result = CliRunner().invoke(bench, args, obj=AppContext(settings))
    assert result.exit_code == 0, result.output
    mixer = json.loads(result.stdout)["sections"]["mixer"]
    assert (out / "mixer.json").is_file() and (out / "mixer.png").is_file()
    rows = {(m["mixer"], m["kind"], m["tokens"]): m for m in mixer["measurements"]}
    assert {k[2] for k in rows} == {256, 1024}  # whole frames of the tiny preset's 16 cells
    for m in rows.values():
        assert m["status"] == "ok" and _positive(m["seconds"], m["peak_bytes"])
        assert len(m["runs_s"]) == 3
    for kind in ("training_step", "inference_write"):
        ratios = mixer["ratios"][kind]
        assert set(ratios) == {"256", "1024"} and _positive(*ratios.values())
