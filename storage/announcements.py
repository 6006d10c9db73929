"""Telling the till that a reconciliation is stored: PostgreSQL NOTIFY and the webhook outbox.

Both are written inside the transaction that stores the reconciliation: PostgreSQL
delivers a NOTIFY only when that transaction commits (and never for one that rolls back),
and the outbox row exists exactly when the reconciliation does. The webhook itself is
sent later, by whoever calls ``due_deliveries`` (the answer worker), outside this module.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage import query_queue
from storage.models import WebhookDelivery
from storage.query_queue import database_now

#: the channel ``LISTEN`` subscribes to; the payload is JSON (see docs/QUERIES.md)
NOTIFY_CHANNEL = "cartmem_reconciliations"


def notify(db: Session, payload: dict[str, Any]) -> bool:
    """``NOTIFY`` the channel with ``payload`` on commit; False where the database has none."""
    return query_queue.notify(db, NOTIFY_CHANNEL, json.dumps(payload, separators=(",", ":")))


def owe_delivery(db: Session, *, session_id: str, payload: dict[str, Any]) -> WebhookDelivery:
    delivery = WebhookDelivery(session_id=session_id, payload=payload)
    db.add(delivery)
    db.flush()
    return delivery


def due_deliveries(db: Session, *, limit: int) -> Sequence[WebhookDelivery]:
    """Undelivered rows whose next attempt is due, oldest first, locked until the
    transaction ends; rows another sender holds are skipped, so two senders never post
    the same delivery at once."""
    return db.scalars(
        sa.select(WebhookDelivery)
        .where(
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.next_attempt_at <= database_now(db),
        )
        .order_by(WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()


def mark_delivered(db: Session, delivery: WebhookDelivery) -> None:
    delivery.attempts += 1
    delivery.delivered_at = database_now(db)
    delivery.last_error = None
    db.flush()


def mark_failed(db: Session, delivery: WebhookDelivery, *, error: str, retry_in_s: float) -> None:
    delivery.attempts += 1
    delivery.last_error = error
    delivery.next_attempt_at = database_now(db) + dt.timedelta(seconds=retry_in_s)
    db.flush()


def deliveries_of(db: Session, session_id: str) -> Sequence[WebhookDelivery]:
    return db.scalars(
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.session_id == session_id)
        .order_by(WebhookDelivery.id)
    ).all()
