"""``cartmem bench``: run the benchmark sections and keep their figures with the machine.

Each section writes ``OUT/<section>.json`` and ``OUT/<section>.png``; ``OUT/bench.json``
holds every section of the run, the machine and the command. Synthetic videos are drawn
once into ``OUT/cache`` and reused by later runs.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.bench import capacity, ingest, memory, mixer, queries, speedup
from app.bench.machine import describe_machine
from app.model_runtime import LoadedModel, load_model
from app.settings import Settings

SECTIONS = ("speedup", "ingest", "queries", "memory", "mixer", "capacity")
#: What a run without named sections measures; ``mixer`` (about half an hour on a CPU) and
#: ``capacity`` (about fifteen minutes: it runs ingest up to 1,024 sessions) are run by name.
DEFAULT_SECTIONS = SECTIONS[:4]


@dataclass(frozen=True)
class BenchReport:
    command: str
    quick: bool
    machine: dict[str, Any]
    seconds: dict[str, float]  # wall time of each section
    sections: dict[str, dict[str, Any]]  # each section's own JSON
    benchmark: str = "cartmem bench"


@dataclass(frozen=True)
class _Run:
    out: Path
    settings: Settings
    model: LoadedModel
    quick: bool
    command: str
    log: Callable[[str], None]

    @property
    def cache(self) -> Path:
        return self.out / "cache"


def run_suite(
    settings: Settings,
    *,
    out: Path,
    sections: Sequence[str] = DEFAULT_SECTIONS,
    quick: bool = False,
    threads: int | None = None,
    command: str = "cartmem bench",
    log: Callable[[str], None] = lambda _line: None,
) -> BenchReport:
    """Run ``sections`` in order and write their files; returns what ``bench.json`` holds."""
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"Unknown benchmark sections {unknown}; choose from {SECTIONS}.")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        out.mkdir(parents=True, exist_ok=True)
        run = _Run(out, settings, load_model(settings), quick, command, log)
        machine = describe_machine()
        seconds: dict[str, float] = {}
        results: dict[str, dict[str, Any]] = {}
        for name in sections:
            log(f"[{name}] {'quick' if quick else 'full'} run")
            began = time.perf_counter()
            results[name] = _RUNNERS[name](run)
            seconds[name] = round(time.perf_counter() - began, 1)
            log(f"[{name}] done in {seconds[name]:.1f} s: {out / name}.json, {out / name}.png")
    finally:  # the thread count is process-wide: a caller (a test run) keeps its own
        torch.set_num_threads(previous_threads)
    report = BenchReport(command, quick, machine, seconds, results)
    _write_json(out / "bench.json", dataclasses.asdict(report))
    return report


def _speedup(run: _Run) -> dict[str, Any]:
    result = speedup.run(
        run.model,
        quick=run.quick,
        cache=run.cache,
        batch=run.settings.query_batch_size,
        memory_fps=run.settings.memory_fps,
        log=run.log,
    )
    return _save(run, "speedup", result, speedup.plot)


def _ingest(run: _Run) -> dict[str, Any]:
    # the existing ingest benchmark loads its own model per run and writes its own files
    results = ingest.run(
        run.out,
        quick=run.quick,
        settings=run.settings,
        on_row=lambda row: run.log(
            f"[ingest] {row['sessions']} sessions: {row['decoded_frames_per_second']}"
            " decoded frames/s"
        ),
    )
    results["command"] = run.command
    _write_json(run.out / "ingest.json", results)
    return results


def _queries(run: _Run) -> dict[str, Any]:
    result = queries.run(run.model, run.settings, quick=run.quick, cache=run.cache, log=run.log)
    return _save(run, "queries", result, queries.plot)


def _memory(run: _Run) -> dict[str, Any]:
    result = memory.run(
        run.model,
        quick=run.quick,
        cache=run.cache,
        memory_fps=run.settings.memory_fps,
        log=run.log,
    )
    return _save(run, "memory", result, memory.plot)


def _mixer(run: _Run) -> dict[str, Any]:
    result = mixer.run(
        quick=run.quick,
        device=run.model.device,
        threads=torch.get_num_threads(),
        log=run.log,
    )
    figures = {"command": run.command, **mixer.to_json(result)}
    _write_json(run.out / "mixer.json", figures)
    mixer.plot(result, run.out / "mixer.png")
    return figures


def _capacity(run: _Run) -> dict[str, Any]:
    result = capacity.run(run.settings, quick=run.quick, log=run.log)
    figures = {"command": run.command, **capacity.to_json(result)}
    _write_json(run.out / "capacity.json", figures)
    capacity.plot(result, run.out / "capacity.png")
    return figures


_RUNNERS: dict[str, Callable[[_Run], dict[str, Any]]] = {
    "speedup": _speedup,
    "ingest": _ingest,
    "queries": _queries,
    "memory": _memory,
    "mixer": _mixer,
    "capacity": _capacity,
}


def _save(run: _Run, name: str, result: Any, plot: Callable[[Any, Path], None]) -> dict[str, Any]:
    figures = {"command": run.command, **dataclasses.asdict(result)}
    _write_json(run.out / f"{name}.json", figures)
    plot(result, run.out / f"{name}.png")
    return figures


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")
