import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
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


def _bench_quick(section: str, tmp_path: Path, checkpoint: Path) -> tuple[dict[str, Any], Path]:
    """``cartmem bench SECTION --quick --json`` on one thread: its report and OUT."""
    settings = Settings(data_dir=tmp_path / "data", checkpoint_path=str(checkpoint), device="cpu")
    out = tmp_path / "bench"
    args = [section, "--quick", "--json", "--out", str(out), "--threads", "1"]
    result = CliRunner().invoke(bench, args, obj=AppContext(settings))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out


def test_bench_mixer_quick_times_both_mixers_in_child_processes(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    report, out = _bench_quick("mixer", tmp_path, tiny_checkpoint)
    mixer = report["sections"]["mixer"]
    assert (out / "mixer.json").is_file() and (out / "mixer.png").is_file()
    rows = {(m["mixer"], m["kind"], m["tokens"]): m for m in mixer["measurements"]}
    assert {k[2] for k in rows} == {256, 1024}  # whole frames of the tiny preset's 16 cells
    for m in rows.values():
        assert m["status"] == "ok" and _positive(m["seconds"], m["peak_bytes"])
        assert len(m["runs_s"]) == 3
    for kind in ("training_step", "inference_write"):
        ratios = mixer["ratios"][kind]
        assert set(ratios) == {"256", "1024"} and _positive(*ratios.values())


def test_bench_mixer_in_process_measures_what_a_child_measures() -> None:
    """The CUDA path (no child process) on the CPU: the same measurement, same fields."""
    from app.bench import mixer

    job = dict(mixer="mamba", kind="inference_write", tokens=256, preset="tiny", device="cpu")
    found = mixer._in_this_process(job, threads=1)
    assert (found.mixer, found.kind, found.tokens, found.status) == (
        "mamba",
        job["kind"],
        256,
        "ok",
    )
    assert found.seconds is not None and found.seconds > 0 and len(found.runs_s) == 3


def test_bench_ingest_hands_over_each_row_as_soon_as_it_is_measured(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    from app.bench import ingest

    settings = Settings(
        data_dir=tmp_path / "data", checkpoint_path=str(tiny_checkpoint), device="cpu"
    )
    seen: list[tuple[int, int]] = []

    def on_row(row: dict[str, Any]) -> None:  # the rows so far, when each one arrives
        seen.append((row["sessions"], len(list((tmp_path / "out").glob("ingest.json")))))

    results = ingest.run(
        tmp_path / "out", quick=True, settings=settings, sessions=(1, 2), on_row=on_row
    )
    assert seen == [(1, 0), (2, 0)]  # before the JSON is written
    assert [r["sessions"] for r in results["runs"]] == [1, 2]


def test_bench_capacity_quick_writes_the_model_and_its_check(tmp_path: Path) -> None:
    import dataclasses

    import torch

    from model import LongVMNet, ModelConfig

    torch.manual_seed(1234)  # a tiny model under another name: the labels must say which
    checkpoint = tmp_path / "store-model"
    LongVMNet(dataclasses.replace(ModelConfig.preset("tiny"), name="store-model")).save(checkpoint)
    report, out = _bench_quick("capacity", tmp_path, checkpoint)
    figures = json.loads((out / "capacity.json").read_text())
    assert figures == report["sections"]["capacity"] and (out / "capacity.png").is_file()
    assert figures["machine"]["load_average_1m_at_start"] is not None
    assert figures["calibration_sessions"] == [1, 2] and figures["validation_sessions"] == [4]
    # and one more run of the last calibration count, committing after every loop, for the
    # commit costs: many small snapshots, so that snapshots and bytes can be told apart
    frequent = figures["calibration_runs"][-1]
    assert frequent["sessions"] == 2 and len(figures["calibration_runs"]) == 3
    assert frequent["commit_rounds"] > figures["calibration_runs"][1]["commit_rounds"]
    assert figures["units"]["apply_s_per_record"] > 0
    assert figures["units"]["write_s_per_frame"] + figures["units"]["write_s_per_session"] > 0
    (row,) = figures["validation"]
    assert row["sessions"] == 4 and _positive(row["measured_fps"], row["predicted_fps"])
    assert row["predicted_write_calls"] == row["measured_write_calls"]
    assert row["predicted_commit_bytes"] == pytest.approx(row["measured_commit_bytes"], rel=0.1)
    plan = figures["paper_plan"]
    assert plan["inputs"]["memory_bytes_fp32"] == 18_163_328
    assert plan["decode"]["stored_frame_shape"] == [252, 448, 3]  # 854 x 480 kept 448 wide
    one = plan["one_worker"]
    assert one["saturates_first"] in one["bounds_sessions_per_worker"]
    assert "estimate" in plan["device_rates"]["source"]  # no GPU in the test run
    # the per-record costs were measured with the run's model, and the labels say which
    assert "apply_s_per_record (store-model preset" in " ".join(plan["labels"]["measured_here"])


@pytest.mark.slow
def test_bench_gpu_script_rehearses_every_step_on_the_cpu(tmp_path: Path) -> None:
    """scripts/bench_gpu.sh --cpu-dry-run: the GPU script's steps, tiny preset, quick."""
    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "gpu"
    env = {**os.environ, "BENCH_PYTHON": sys.executable, "CARTMEM_DATA_DIR": str(tmp_path)}
    script = [str(repo / "scripts" / "bench_gpu.sh")]
    run = subprocess.run(
        [*script, "--cpu-dry-run", str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in ("capacity", "ingest", "decode", "queries", "speedup"):
        assert json.loads((out / f"{name}.json").read_text()) and (out / f"{name}.png").is_file()
    assert json.loads((out / "capacity.json").read_text())["validation"] == []  # plan only
    assert (out / "tiny-random" / "config.json").is_file()
    # ingest as it runs on the device by default, and one clip a call in float32 for the ratio
    assert json.loads((out / "ingest.json").read_text())["runs"][0]["backbone_run"] == {
        "batch_frames": 16,
        "autocast": "off",
    }
    (per_clip,) = json.loads((out / "per-clip-fp32" / "ingest.json").read_text())["runs"]
    assert per_clip["sessions"] == 2 and per_clip["backbone_run"]["autocast"] == "off"


def test_bench_gpu_script_says_why_without_a_cuda_device(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible: the script would run")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "BENCH_PYTHON": sys.executable}
    run = subprocess.run(
        [str(repo / "scripts" / "bench_gpu.sh"), str(tmp_path / "gpu")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "no CUDA device is visible" in run.stderr


def test_bench_decode_times_cpu_streams_and_says_why_the_gpu_decoder_is_missing(
    tmp_path: Path,
) -> None:
    from app.bench import decode

    assert decode.main(["--out", str(tmp_path), "--seconds", "2", "--streams", "1", "2"]) == 0
    results = json.loads((tmp_path / "decode.json").read_text())
    assert (tmp_path / "decode.png").is_file()
    rows = results["cpu"]
    assert [r["streams"] for r in rows] == [1, 2]
    assert [r["frames"] for r in rows] == [30, 60]  # 2 s at 15 fps, per stream
    assert all(r["frames_per_second"] > 0 and not r["hardware_decoded"] for r in rows)
    if torch.cuda.is_available() and "cuda" in results:
        assert all(r["hardware_decoded"] for r in results["cuda"])
    else:
        assert results["cuda_unavailable"].endswith(".")
        assert "cuda" not in results
