"""Fixtures of the ingest tests: a source that hands out records a test made."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from app import db as database_ops
from app.db import Database
from app.ingest import IngestEngine, IngestStats
from app.ingest.records import Record
from app.model_runtime import load_model
from app.settings import Settings


class ListSource:
    """Given records of one partition, handed out in order as a consumer would; the engine
    cannot tell it from Kafka (tests of what the broker itself does use a real one)."""

    group = "list-source"

    def __init__(self, records: Sequence[Record], *, topic: str | None = None) -> None:
        self._records = list(records)
        self.topic = topic or self._records[0].topic
        self._position = 0
        self._on_assigned: Callable[[set[tuple[str, int]]], None] = lambda _tps: None
        self._assigned = False

    def bind(self, on_assigned, on_revoked) -> None:
        self._on_assigned = on_assigned

    def poll(self, timeout_s: float, max_records: int) -> list[Record]:
        if not self._assigned:
            self._assigned = True
            self._on_assigned({(self.topic, 0)})
        batch = self._records[self._position : self._position + max_records]
        self._position += len(batch)
        return batch

    def seek(self, tp: tuple[str, int], offset: int) -> None:
        self._position = offset

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def lag(self) -> int:
        return len(self._records) - self._position

    def lags(self) -> dict[tuple[str, int], int]:
        return {(self.topic, 0): self.lag()}

    def caught_up(self) -> bool:
        return self._position >= len(self._records)

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        pass

    def close(self) -> None:
        pass


def ingest(
    settings: Settings, records: list[Record], list_source: type[ListSource], **run: Any
) -> IngestStats:
    """Run an ingest engine over ``records`` (by default until it has been idle 0.3 s)."""
    database = Database(settings)
    try:
        engine = IngestEngine(settings, database, load_model(settings), list_source(records))
        return engine.run(**({"until_idle_s": 0.3} | run))
    finally:
        database.dispose()


@pytest.fixture
def commit_often_settings(tmp_path: Path, tiny_checkpoint: Path) -> Settings:
    """A migrated SQLite database and the tiny model on CPU, committing as often as it can."""
    s = Settings(
        data_dir=tmp_path / "data",
        checkpoint_path=str(tiny_checkpoint),
        device="cpu",
        commit_interval_s=0.001,
    )
    database_ops.upgrade(s)
    return s


@pytest.fixture
def list_source() -> type[ListSource]:
    """The class: ``list_source(records)`` is a source of those records."""
    return ListSource
