"""The till is told: one NOTIFY and one webhook delivery per stored reconciliation, on a real
PostgreSQL, the webhook POSTed to a real HTTP server on 127.0.0.1 and retried after a 500."""

from __future__ import annotations

import dataclasses
import json
import select
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import pytest
import sqlalchemy as sa

from app import db as database_ops
from app.db import Database
from app.reconcile import add_scan, reconcile_now, request_reconciliation
from app.reconcile.webhook import send_due, verify, webhook_sender
from app.settings import Settings
from storage import announcements

from .test_service import SCANS, SKUS, SPANS

pytestmark = pytest.mark.postgres
SECRET = "s3cret-for-tests"


@pytest.fixture
def database(pg_settings: Settings) -> Iterator[Database]:
    """This module's world lives on PostgreSQL (the fixtures of conftest.py use it)."""
    database_ops.upgrade(pg_settings)
    database = Database(pg_settings)
    yield database
    database.dispose()


@pytest.fixture
def shop(database: Database, make_session, make_catalog) -> Database:
    make_catalog(*SKUS)
    make_session("s1")
    for sku, qty in SCANS.items():
        add_scan(database, "s1", sku, qty=qty)
    request_reconciliation(database, "s1", evidence="steps")
    return database


@pytest.fixture
def listener(pg_settings: Settings) -> Iterator[psycopg2.extensions.connection]:
    """A checkout service's connection, LISTENing on the documented channel."""
    url = sa.make_url(pg_settings.database_url).set(drivername="postgresql")
    conn = psycopg2.connect(url.render_as_string(hide_password=False))
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    conn.cursor().execute(f"LISTEN {announcements.NOTIFY_CHANNEL}")
    yield conn
    conn.close()


def received(conn, wait_s: float = 1.0) -> list[dict]:
    """Every notification that arrives within ``wait_s``."""
    out = []
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        if select.select([conn], [], [], left)[0]:
            conn.poll()
            while conn.notifies:
                out.append(json.loads(conn.notifies.pop(0).payload))
    return out


def test_each_stored_reconciliation_is_notified_once(shop: Database, answer_all, listener) -> None:
    answer_all(SPANS)
    (first,) = received(listener)
    assert first["version"] == 1 and first["event"] == "reconciliation.stored"
    assert first["session_id"] == "s1" and first["discrepancies"] == 3

    assert reconcile_now(shop, "s1").state == "done"  # read again: nothing new stored
    assert received(listener, 0.3) == []
    reconcile_now(shop, "s1", recompute=True)
    (again,) = received(listener)
    assert again["reconciliation_id"] == first["reconciliation_id"]


class Receiver:
    """A real HTTP server on 127.0.0.1 that answers 500 to the first ``fail_first`` POSTs."""

    def __init__(self, fail_first: int) -> None:
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(receiver.requests) < fail_first else 200
                receiver.requests.append((status, dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/cartmem"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    yield r
    r.close()


def test_the_webhook_is_signed_retried_after_a_500_and_delivered_once(
    shop: Database, answer_all, receiver: Receiver, pg_settings: Settings
) -> None:
    settings = dataclasses.replace(
        pg_settings, webhook_url=receiver.url, webhook_secret=SECRET, webhook_retry_s=0.2
    )
    answer_all(SPANS, webhook=True)

    assert send_due(shop, settings) == 0  # the receiver answers 500: owed still
    assert send_due(shop, settings) == 0  # not due again before its retry delay
    with shop.session() as db:
        (owed,) = announcements.deliveries_of(db, "s1")
        assert owed.attempts == 1 and owed.delivered_at is None
        assert owed.last_error == "the receiver answered HTTP 500"
    time.sleep(0.3)
    assert send_due(shop, settings) == 1
    assert send_due(shop, settings) == 0  # delivered: never sent again

    assert [status for status, _, _ in receiver.requests] == [500, 200]
    (_, first_headers, _), (_, headers, body) = receiver.requests
    assert headers["X-Cartmem-Delivery"] == first_headers["X-Cartmem-Delivery"]
    assert verify(SECRET, headers["X-Cartmem-Signature"], body)
    assert not verify("another secret", headers["X-Cartmem-Signature"], body)
    assert not verify(SECRET, headers["X-Cartmem-Signature"], body + b" ")
    payload = json.loads(body)
    assert payload["version"] == 1 and payload["session_id"] == "s1"
    assert payload["delivery_id"] == int(headers["X-Cartmem-Delivery"])
    assert {d["sku"]: d["kind"] for d in payload["discrepancies"]} == {
        "GRABBED": "not_scanned",
        "TWO": "quantity",
        "PUT-BACK": "scanned_not_taken",
    }
    with shop.session() as db:
        (done,) = announcements.deliveries_of(db, "s1")
        assert done.attempts == 2 and done.delivered_at is not None and done.last_error is None


def test_an_unreachable_receiver_keeps_the_delivery_owed(
    shop: Database, answer_all, pg_settings: Settings
) -> None:
    closed = Receiver(fail_first=0)
    closed.close()  # nothing listens on its port any more
    settings = dataclasses.replace(pg_settings, webhook_url=closed.url, webhook_secret=SECRET)
    answer_all(SPANS, webhook=True)
    assert send_due(shop, settings) == 0
    with shop.session() as db:
        (owed,) = announcements.deliveries_of(db, "s1")
        assert owed.delivered_at is None and "no answer from the receiver" in owed.last_error


def test_the_sender_thread_delivers_beside_the_worker(
    shop: Database, answer_all, receiver: Receiver, pg_settings: Settings
) -> None:
    settings = dataclasses.replace(
        pg_settings, webhook_url=receiver.url, webhook_secret=SECRET, webhook_retry_s=0.2
    )
    sender = webhook_sender(shop, settings, poll_s=0.1).start()
    try:
        answer_all(SPANS, webhook=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [s for s, _, _ in receiver.requests] != [500, 200]:
            time.sleep(0.1)
    finally:
        sender.stop()
    assert [status for status, _, _ in receiver.requests] == [500, 200]
    with shop.session() as db:
        (done,) = announcements.deliveries_of(db, "s1")
        assert done.delivered_at is not None
