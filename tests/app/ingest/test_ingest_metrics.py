"""Ingest's metrics: lag per owned partition and what each commit cost, in time and bytes."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app import db as database_ops
from app.db import Database
from app.ingest import FileSource, IngestEngine, IngestMetrics
from app.model_runtime import load_model
from app.settings import Settings


def values(metrics: IngestMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by its name and its labels as sorted (name, value) pairs."""
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_partition_lag_and_commit_cost_after_a_run(
    tmp_path: Path, tiny_checkpoint: Path, synth_videos: list[Path]
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", checkpoint_path=str(tiny_checkpoint), device="cpu"
    )
    database_ops.upgrade(settings)
    database = Database(settings)
    metrics = IngestMetrics()
    source = FileSource([(synth_videos[0], "s1")], chunk_seconds=3.0)
    engine = IngestEngine(settings, database, load_model(settings), source, metrics=metrics)
    metrics.set_lags({("files", 0): 5, ("files", 1): 2})  # as if it had owned two
    assert engine.work_waiting()
    engine.run(until_idle_s=0.3)
    database.dispose()
    seen = values(metrics)
    lag = "cartmem_ingest_partition_lag"
    assert seen[(lag, (("partition", "0"), ("topic", "files")))] == 0
    assert (lag, (("partition", "1"), ("topic", "files"))) not in seen, "no longer owned"
    assert seen[("cartmem_ingest_consumer_lag", ())] == 0
    assert not engine.work_waiting()
    assert seen[("cartmem_ingest_commit_seconds_count", ())] >= 1
    assert seen[("cartmem_ingest_commit_bytes_sum", ())] > 0  # the session's memory, at least
