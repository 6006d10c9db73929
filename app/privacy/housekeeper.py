"""The workers' own purge: ``purge`` every ``CARTMEM_PURGE_INTERVAL_S`` on a thread of its
own, so retention holds without anyone running ``cartmem purge`` (and never delays a
worker's real work)."""

from __future__ import annotations

import logging

from app.db import Database
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
