"""The answer worker's LISTEN connection: a database that refuses it leaves plain polling."""

from __future__ import annotations

import time

from app.answer.waker import Waker
from app.db import Database
from app.settings import Settings


def test_a_refused_listen_connection_falls_back_to_polling() -> None:
    # nothing listens on port 1: the driver's own error, which the pool does not wrap
    settings = Settings(database_url="postgresql://cartmem:pw-123456@127.0.0.1:1/cartmem")
    database = Database(settings)
    try:
        waker = Waker(settings, database)
        began = time.monotonic()
        assert waker.wait(0.2) is False
        assert time.monotonic() - began >= 0.2
        waker.close()
    finally:
        database.dispose()
