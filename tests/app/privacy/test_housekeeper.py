"""`cartmem purge --every`: the purge as a process of its own, until SIGTERM."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from app import db as database_ops
from app.cli import main
from app.db import Database
from app.settings import Settings
from storage.models import SessionMemory, ShoppingSession


def test_purge_every_purges_at_once_and_stops_on_sigterm(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    database_ops.upgrade(settings)
    database = Database(settings)
    ended = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    with database.session() as db:
        db.add(ShoppingSession(id="old", status="closed", ended_at=ended))
        db.flush()
        db.add(SessionMemory(session_id="old", frames_seen=3, model_version="m", fps=1.0))
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    root = logging.getLogger()
    try:
        result = CliRunner().invoke(main, ["purge", "--every", "60"], env=settings.to_env())
    finally:
        timer.cancel()
        for handler in [h for h in root.handlers if h.name == "cartmem"]:
            root.removeHandler(handler)  # it wrote to the runner's stream, closed now
    assert result.exit_code == 0, result.output
    assert "every 60 s" in result.output and "purged" in result.output
    with database.session() as db:  # the memory is past its 7 days; the session stays
        assert db.scalar(sa.select(sa.func.count()).select_from(SessionMemory)) == 0
        assert db.get(ShoppingSession, "old") is not None
    database.dispose()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back
