"""Sending the webhook deliveries reconciliation owes the till: signed POSTs, retried.

Each delivery is POSTed as JSON with three headers a receiver checks:

- ``X-Cartmem-Delivery``: the delivery's id. A delivery can arrive twice (the receiver
  answered 2xx, but the sender died before recording it), so receivers keep the ids
  they have handled and ignore a repeat.
- ``X-Cartmem-Signature: t=<unix seconds>,v1=<hex>``: HMAC-SHA256 with the shared secret
  (``CARTMEM_WEBHOOK_SECRET``) over ``"<t>." + body``. A receiver recomputes it, compares in
  constant time, and rejects old ``t`` so a captured request cannot be replayed later.
- ``X-Cartmem-Event: reconciliation.stored``.

A 2xx answer delivers it; anything else (another status, a refused connection, a
timeout) leaves it owed, tried again after ``CARTMEM_WEBHOOK_RETRY_S`` doubling with each
attempt up to ten minutes. Nothing is ever dropped: an undelivered row stays with its
``last_error`` for operators to see. The answer worker runs ``webhook_sender`` on a thread
when ``CARTMEM_WEBHOOK_URL`` is set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from app.db import Database
from app.periodic import PeriodicTask
from app.reconcile.announce import EVENT
from app.settings import Settings
from storage import announcements

log = logging.getLogger("cartmem.webhook")

MAX_RETRY_S = 600.0
_BATCH = 16


@dataclass(frozen=True)
class PostResult:
    status: int | None  # HTTP status, None when no answer came
    error: str | None  # why it is not delivered, in a sentence; None when it is

    @property
    def delivered(self) -> bool:
        return self.error is None


Poster = Callable[[str, bytes, dict[str, str], float], PostResult]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Cartmem-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, max_age_s: float = 300.0) -> bool:
    """What a receiver does with the header: True when ``body`` was signed with ``secret``
    less than ``max_age_s`` ago."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > max_age_s:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, header)


def post_json(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> PostResult:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return PostResult(response.status, None)
    except urllib.error.HTTPError as exc:
        return PostResult(exc.code, f"the receiver answered HTTP {exc.code}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return PostResult(None, f"no answer from the receiver ({reason})")


def send_due(database: Database, settings: Settings, *, post: Poster = post_json) -> int:
    """POST every delivery that is due; returns how many were delivered."""
    delivered = 0
    while True:
        with database.session() as db:
            due = announcements.due_deliveries(db, limit=_BATCH)
            for delivery in due:
                body = json.dumps(
                    delivery.payload | {"delivery_id": delivery.id}, separators=(",", ":")
                ).encode()
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": "cartmem-webhook/1",
                    "X-Cartmem-Event": EVENT,
                    "X-Cartmem-Delivery": str(delivery.id),
                    "X-Cartmem-Signature": signature(
                        settings.webhook_secret, int(time.time()), body
                    ),
                }
                result = post(settings.webhook_url, body, headers, settings.webhook_timeout_s)
                if result.delivered:
                    announcements.mark_delivered(db, delivery)
                    delivered += 1
                    continue
                retry_in_s = min(MAX_RETRY_S, settings.webhook_retry_s * 2**delivery.attempts)
                announcements.mark_failed(
                    db, delivery, error=result.error or "not delivered", retry_in_s=retry_in_s
                )
                log.warning(
                    "webhook delivery %d for session %s not delivered (attempt %d): %s; "
                    "trying again in %.0f s",
                    delivery.id,
                    delivery.session_id,
                    delivery.attempts,
                    result.error,
                    retry_in_s,
                )
        if len(due) < _BATCH:
            return delivered


def webhook_sender(database: Database, settings: Settings, *, poll_s: float = 1.0) -> PeriodicTask:
    """``send_due`` every ``poll_s`` on a thread of its own, beside the answer worker: a slow
    or unreachable receiver (each POST may take ``CARTMEM_WEBHOOK_TIMEOUT_S``) never holds
    up answering. Call ``start()``, and ``stop()`` at the end."""
    return PeriodicTask(
        "webhook deliveries",
        poll_s,
        lambda: send_due(database, settings),
        log,
        stop_timeout_s=settings.webhook_timeout_s + 5,
    )
