"""What the till is told when a reconciliation is stored, and how (NOTIFY, webhook outbox).

``announce`` runs inside the transaction that stores the row (``service._advance``): the
NOTIFY goes out when that transaction commits and the webhook delivery is owed exactly
when the row exists, so each stored computation (the first, and each ``--recompute``) is
announced once. Both payloads carry ``version``; a listener reads fields it knows and
ignores the rest.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from storage import Reconciliation, announcements

#: version of the payloads below; bumped when a field changes meaning or goes away
EVENT_VERSION = 1
EVENT = "reconciliation.stored"


def notification(row: Reconciliation) -> dict[str, Any]:
    """The NOTIFY payload: small (PostgreSQL caps it at 8,000 bytes), the row says the rest."""
    return {
        "version": EVENT_VERSION,
        "event": EVENT,
        "session_id": row.session_id,
        "reconciliation_id": row.id,
        "discrepancies": len(row.discrepancies),
    }


def webhook_body(row: Reconciliation) -> dict[str, Any]:
    """The webhook's JSON: the discrepancies with their evidence, what was scanned and when
    it was computed (``delivery_id`` is added when it is sent)."""
    return {
        "version": EVENT_VERSION,
        "event": EVENT,
        "session_id": row.session_id,
        "reconciliation_id": row.id,
        "computed_at": row.updated_at.isoformat(),
        "model_version": row.model_version,
        "discrepancies": row.discrepancies,
        "scanned": row.scanned,
    }


def announce(db: Session, row: Reconciliation, *, webhook: bool) -> None:
    db.refresh(row)  # the server's timestamps of this very write
    announcements.notify(db, notification(row))
    if webhook:
        announcements.owe_delivery(db, session_id=row.session_id, payload=webhook_body(row))
