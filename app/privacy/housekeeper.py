"""The workers' own purge: ``purge`` every ``CARTMEM_PURGE_INTERVAL_S`` on a thread of its
own, so retention holds without anyone running ``cartmem purge`` (and never delays a
worker's real work); and ``cartmem purge --every``, the same as a process of its own for
deployments whose workers' database roles may not delete (docs/SECURITY.md)."""

from __future__ import annotations

import logging
import signal
import threading

from app.db import Database
from app.logs import configure_logging
from app.periodic import PeriodicTask
from app.privacy.purge import RetentionPolicy, purge
from app.settings import Settings

log = logging.getLogger("cartmem.purge")


def start_housekeeper(database: Database, settings: Settings) -> PeriodicTask | None:
    """The running housekeeper of a worker, or None when ``CARTMEM_PURGE_INTERVAL_S`` is 0."""
    if settings.purge_interval_s <= 0:
        return None
    policy = RetentionPolicy.of(settings)
    task = PeriodicTask("purge", settings.purge_interval_s, lambda: purge(database, policy), log)
    return task.start()


def run_housekeeper(database: Database, settings: Settings, interval_s: float) -> None:
    """Purge now and every ``interval_s`` until SIGTERM or SIGINT, logging what went."""
    configure_logging(settings)
    policy = RetentionPolicy.of(settings)
    task = PeriodicTask("purge", interval_s, lambda: purge(database, policy), log)
    stopped = threading.Event()
    previous = {
        s: signal.signal(s, lambda *_: stopped.set()) for s in (signal.SIGTERM, signal.SIGINT)
    }
    log.info("purging what retention lets expire every %.0f s", interval_s)
    try:
        task.run_round()
        task.start()
        stopped.wait()
    finally:
        task.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
