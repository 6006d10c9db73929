"""`cartmem bench`: measure the speedup over per-query re-reading, ingest, queries, memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from app.cli._output import emit, json_option, table

# app.bench.suite's SECTIONS and DEFAULT_SECTIONS, kept light (no torch import)
SECTIONS = ("speedup", "ingest", "queries", "memory", "mixer", "capacity")
DEFAULT_SECTIONS = SECTIONS[:4]


@click.command()
@click.argument("section", required=False, type=click.Choice(SECTIONS))
@click.option("--quick", is_flag=True, help="A small version: under two minutes on a CPU.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("out/bench"),
    show_default=True,
    help="Directory for the JSON, the plots and the cached synthetic videos.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="CPU threads for torch (default: torch's own choice).",
)
@json_option
@click.pass_obj
def bench(
    app: Any, section: str | None, quick: bool, out: Path, threads: int | None, as_json: bool
) -> None:
    """Run the benchmarks (no SECTION: the first four) and write OUT/bench.json with the
    machine.

    speedup: read once into memory vs re-reading each question's window (the paper's
    Table 1); ingest: frames/s against concurrent sessions; queries: throughput and latency
    against batch size; memory: bytes per session from 1 minute to 10 hours; mixer: the
    sampler's training step and write with attention vs Mamba from 1k to 200k tokens
    (about half an hour on a CPU; run it by name); capacity: the throughput model
    calibrated on 1-16 sessions and checked at 64-1,024, and the paper preset's plan on
    one H200 (about fifteen minutes; run it by name).
    """
    from app.bench.suite import run_suite  # late: loads torch
    from model import CheckpointError

    command = " ".join(
        ["cartmem bench"]
        + ([section] if section else [])
        + (["--quick"] if quick else [])
        + ["--out", str(out)]
        + ([f"--threads {threads}"] if threads else [])
    )
    try:
        report = run_suite(
            app.settings,
            out=out,
            sections=[section] if section else DEFAULT_SECTIONS,
            quick=quick,
            threads=threads,
            command=command,
            log=lambda line: click.echo(line, err=True),
        )
    except CheckpointError as exc:
        # the shipped checkpoint's message ends "pass a checkpoint directory": say where
        raise click.ClickException(f"{str(exc).rstrip('.')} in CARTMEM_CHECKPOINT_PATH.") from None
    emit(report, as_json, lambda console: _print(console, report.sections, out))


def _print(console: Console, sections: dict[str, dict[str, Any]], out: Path) -> None:
    if "speedup" in sections:
        s = sections["speedup"]
        console.print(
            table(
                f"speedup: {s['session_minutes']:g}-min session, {s['preset']} on {s['device']}",
                ("questions", "cartmem s", "per-query baseline s", "ratio", "baseline"),
                (
                    (
                        r["questions"],
                        f"{r['cartmem']['total_s']:.1f}",
                        f"{r['baseline']['total_s']:.1f}",
                        f"{r['ratio']:.1f}x",
                        f"scaled from {r['baseline_timed']}"
                        if r["baseline_scaled"]
                        else f"all {r['baseline_timed']} timed",
                    )
                    for r in s["rows"]
                ),
            )
        )
    if "ingest" in sections:
        console.print(
            table(
                "ingest",
                ("sessions", "decoded frames/s", "memory frames/s", "device bytes/session"),
                (
                    (
                        r["sessions"],
                        r["decoded_frames_per_second"],
                        r["memory_frames_per_second"],
                        f"{r['device_bytes_per_session']:,}",
                    )
                    for r in sections["ingest"]["runs"]
                ),
            )
        )
    if "queries" in sections:
        console.print(
            table(
                "queries (AnswerWorker, database included)",
                ("batch", "queries/s", "p50 ms", "p99 ms", "model alone queries/s"),
                (
                    (
                        r["batch_size"],
                        r["worker"]["queries_per_second"],
                        r["worker"]["latency_p50_ms"],
                        r["worker"]["latency_p99_ms"],
                        r["model_only"]["queries_per_second"],
                    )
                    for r in sections["queries"]["rows"]
                ),
            )
        )
    if "memory" in sections:
        console.print(
            table(
                "memory per session",
                ("minutes", "frames", "database bytes", "device bytes", "sampler ms/clip"),
                (
                    (
                        f"{r['minutes']:g}",
                        r["frames"],
                        f"{r['database_bytes']:,}",
                        f"{r['device_bytes']:,}",
                        r["sampler_ms_per_clip"],
                    )
                    for r in sections["memory"]["rows"]
                ),
            )
        )
    if "mixer" in sections:
        s = sections["mixer"]
        console.print(
            table(
                f"sampler mixers: {s['preset']} preset on {s['device']}, {s['threads']} threads",
                ("mixer", "step", "tokens", "seconds", "peak MiB", "status"),
                (
                    (
                        m["mixer"],
                        m["kind"],
                        f"{m['tokens']:,}",
                        "" if m["seconds"] is None else f"{m['seconds']:.3f}",
                        "" if m["peak_bytes"] is None else f"{m['peak_bytes'] / 2**20:,.0f}",
                        f"{m['status']} {m['note']}".strip(),
                    )
                    for m in s["measurements"]
                ),
            )
        )
    if "capacity" in sections:
        _print_capacity(console, sections["capacity"])
    console.print(f"wrote {out / 'bench.json'}")


def _print_capacity(console: Console, s: dict[str, Any]) -> None:
    rows = [("calibration", r) for r in s["calibration"]]
    rows += [("validation", r) for r in s["validation"]]
    console.print(
        table(
            f"capacity model: {s['preset']} preset on {s['device']}, {s['torch_threads']} threads",
            ("sessions", "run", "predicted frames/s", "measured frames/s", "error"),
            (
                (
                    r["sessions"],
                    kind,
                    r["predicted_fps"],
                    r["measured_fps"],
                    f"{r['error_pct']:+.1f} %",
                )
                for kind, r in rows
            ),
        )
    )
    one = s["paper_plan"]["one_worker"]
    bounds = ", ".join(f"{k} {v:,}" for k, v in one["bounds_sessions_per_worker"].items())
    console.print(
        f"paper preset, one H200 worker: {one['sessions_per_worker']:,} sessions "
        f"({one['saturates_first']} saturates first; bounds: {bounds})"
    )
