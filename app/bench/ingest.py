"""Ingest throughput: frames per second end to end (decode, backbone, sampler, commits)
against the number of concurrent sessions, and device bytes per session.

The same engine as production runs on the in-process file source (no broker, so the
figure is the worker's own cost) with the database in a temporary SQLite file. Every
session replays one synthetic video under its own id, interleaved message by message.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import db as database_ops
from app.bench.machine import describe_machine
from app.bench.timed_engine import TimedEngine
from app.db import Database
from app.ingest import FileSource, IngestEngine
from app.model_runtime import load_model
from app.settings import Settings

FULL_SESSIONS = (1, 8, 64, 256)
QUICK_SESSIONS = (1, 4)


def measure(
    settings: Settings,
    video: Path,
    sessions: int,
    workdir: Path,
    *,
    timed: bool = False,
    commit_interval_s: float = 5.0,
) -> dict[str, Any]:
    """One run of ``sessions`` sessions into a fresh database; ``timed``: with the main
    thread's phases and the CPU seconds of the process and of the decode pool
    (``timings``, for the capacity model)."""
    run = dataclasses.replace(
        settings,
        data_dir=workdir / f"run-{sessions}-every-{commit_interval_s:g}s",
        database_url="",
        max_live_sessions=max(sessions, 1),
        commit_interval_s=commit_interval_s,
    )
    database_ops.upgrade(run)
    database = Database(run)
    model = load_model(run)
    source = FileSource([(video, f"bench-{i:04d}") for i in range(sessions)], chunk_seconds=4.0)
    engine = (TimedEngine if timed else IngestEngine)(run, database, model, source)
    cpu_before, main_before = _process_cpu_s(), time.thread_time()
    began = time.perf_counter()
    stats = engine.run(until_idle_s=0.2)
    elapsed = time.perf_counter() - began - 0.2
    cpu_s, main_cpu_s = _process_cpu_s() - cpu_before, time.thread_time() - main_before
    database.dispose()
    decoded, memory_frames = stats.decoded_frames, stats.memory_frames
    row = {
        "sessions": sessions,
        "seconds": round(elapsed, 3),
        "decoded_frames": int(decoded),
        "memory_frames": int(memory_frames),
        "decoded_frames_per_second": round(decoded / elapsed, 1),
        "memory_frames_per_second": round(memory_frames / elapsed, 2),
        "clips": stats.clips,
        "commit_rounds": stats.commits,
        "commit_seconds": round(stats.commit_seconds, 3),
        "commit_bytes": stats.commit_bytes,
        "commit_bytes_per_round": stats.commit_bytes // max(1, stats.commits),
        "commit_bytes_per_memory_frame": round(stats.commit_bytes / max(1, memory_frames)),
        "device_bytes_per_session": engine.pool.nbytes // engine.pool.block.batch_size,
        "device": model.device,
        "preset": model.net.cfg.name,
        "backbone_run": engine.backbone_run.identity(),
    }
    if isinstance(engine, TimedEngine):
        row["timings"] = engine.timings.to_json() | {
            "process_cpu_s": round(cpu_s, 3),
            "main_thread_cpu_s": round(main_cpu_s, 3),
            "decode_cpu_s": round(engine.pool_cpu.cpu_s, 3),
            "decode_tasks": engine.pool_cpu.tasks,
        }
    return row


def benchmark_video(workdir: Path, *, quick: bool) -> Path:
    """The session every benchmark run replays: one synthetic video, 15 s or 60 s."""
    from model.synth import generate_dataset

    generate_dataset(workdir / "ds", videos=1, minutes=0.25 if quick else 1.0, seed=5)
    return next((workdir / "ds" / "videos").glob("*.mp4"))


def _process_cpu_s() -> float:
    """CPU seconds of every thread of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["runs"]
    x = [r["sessions"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(
        x, [r["decoded_frames_per_second"] for r in rows], "o-", label="decoded source frames/s"
    )
    ax.plot(x, [r["memory_frames_per_second"] for r in rows], "s-", label="memory frames/s (1 FPS)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent sessions")
    ax.set_ylabel("frames per second")
    ax.set_title(f"Ingest throughput, {rows[0]['preset']} preset on {rows[0]['device']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(
    out: Path,
    *,
    quick: bool,
    settings: Settings,
    video: Path | None = None,
    sessions: tuple[int, ...] | None = None,
    on_row: Callable[[dict[str, Any]], None] = lambda _row: None,
) -> dict[str, Any]:
    """``on_row`` sees each run's row as soon as it is measured (a run cut short by a time
    limit still shows the rows before it)."""
    counts = sessions or (QUICK_SESSIONS if quick else FULL_SESSIONS)
    with tempfile.TemporaryDirectory(prefix="cartmem-bench-") as tmp:
        workdir = Path(tmp)
        if video is None:
            video = benchmark_video(workdir, quick=quick)
        results: dict[str, Any] = {
            "benchmark": "ingest",
            "machine": describe_machine(),
            "video": str(video.name),
            "runs": [],
        }
        for n in counts:
            results["runs"].append(measure(settings, video, n, workdir))
            on_row(results["runs"][-1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out / "ingest.png")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sessions", type=int, nargs="*", default=None)
    args = parser.parse_args(argv)
    results = run(
        args.out,
        quick=args.quick,
        settings=Settings.from_env(),
        sessions=tuple(args.sessions) if args.sessions else None,
        on_row=lambda row: print(json.dumps(row), flush=True),
    )
    results["command"] = "python -m app.bench.ingest " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    (args.out / "ingest.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
