"""The workers' own purge: ``purge`` every ``CARTMEM_PURGE_INTERVAL_S`` on a thread of its
own, so retention holds without anyone running ``cartmem purge`` (and never delays a
worker's real work)."""

from __future__ import annotations

import logging
import threading

from app.db import Database
from app.errors import CartmemError
from app.privacy.purge import RetentionPolicy, purge
from app.settings import Settings

log = logging.getLogger("cartmem.purge")


class Housekeeper:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.policy = RetentionPolicy.of(settings)
        self.interval_s = settings.purge_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cartmem-purge", daemon=True)

    def start(self) -> Housekeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                purge(self.database, self.policy)
            except CartmemError as exc:  # the database is down, say: next round
                log.error("purge: %s", exc)
            except Exception:
                log.exception("purge failed; trying again in %.0f s", self.interval_s)


def start_housekeeper(database: Database, settings: Settings) -> Housekeeper | None:
    """The housekeeper of a worker, or None when ``CARTMEM_PURGE_INTERVAL_S`` is 0."""
    return Housekeeper(database, settings).start() if settings.purge_interval_s > 0 else None
