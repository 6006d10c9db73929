"""A worker command ends its process without the interpreter's teardown, and loses nothing
on the way: its output is flushed, its exit status kept, and it waits for live threads."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from app import process
from app.settings import Settings
from tests.conftest import run_cartmem

ROOT = Path(__file__).resolve().parents[2]


def cartmem(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cartmem(settings.to_env(), *args)


def test_an_ingest_worker_ends_at_once_with_its_output_and_status(
    tmp_path: Path, tiny_checkpoint: Path, synth_videos: list[Path]
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", checkpoint_path=str(tiny_checkpoint), device="cpu"
    )
    assert cartmem(settings, "db", "upgrade").returncode == 0
    done = cartmem(
        settings, "ingest", "--video", str(synth_videos[0]), "--until-idle", "0.3", "--json"
    )
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)  # printed, and flushed before the process ended
    assert stats["sessions_closed"] == 1 and stats["clips"] > 0

    other = Settings(data_dir=tmp_path / "empty", checkpoint_path=str(tiny_checkpoint))
    failed = cartmem(other, "ingest", "--video", str(synth_videos[0]), "--until-idle", "0.3")
    assert failed.returncode == 1 and "cartmem db upgrade" in failed.stderr


def test_nothing_ends_early_unless_a_worker_asked_and_no_thread_is_left(monkeypatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr(process.os, "_exit", exits.append)
    monkeypatch.setattr(process, "_skip_teardown", False)
    process.exit_now_if_asked(0)
    assert exits == []  # not asked: the interpreter ends as usual

    process.skip_teardown_at_exit()
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        process.exit_now_if_asked(0)
        assert exits == []  # a thread still runs: it is waited for as usual
    finally:
        release.set()
        worker.join()
    process.exit_now_if_asked("a message")
    assert exits == []  # the interpreter prints a message code on its way out
    process.exit_now_if_asked(3)
    assert exits == [3]


@pytest.fixture(autouse=True)
def _teardown_flag_restored():
    yield
    process._skip_teardown = False
