"""What the till scanned for a session: the other side of every reconciliation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.catalog import SKU_PATTERN
from app.db import Database
from app.errors import InvalidInputError, NotFoundError
from storage import ShoppingSession
from storage import reconciliations as store


@dataclass(frozen=True)
class ScanLine:
    id: int
    session_id: str
    sku: str
    qty: int
    scanned_at: dt.datetime


def add_scan(database: Database, session_id: str, sku: str, *, qty: int = 1) -> ScanLine:
    """Record one till line. The SKU need not be in the catalog (the till sells more than
    the cameras know); a known session is required, so a mistyped id fails at once."""
    if not SKU_PATTERN.fullmatch(sku):
        raise InvalidInputError(
            f"SKU {sku!r} is not valid: use 1-64 letters, digits, '.', '_', ':' or '-'."
        )
    if qty < 1:
        raise InvalidInputError(f"a scan needs a quantity of at least 1, not {qty}.")
    with database.session() as db:
        _require_session(db, session_id)
        scan = store.add_scan(db, session_id=session_id, sku=sku, qty=qty)
        db.refresh(scan)  # scanned_at is set by the database
        return ScanLine(scan.id, scan.session_id, scan.sku, scan.qty, scan.scanned_at)


def list_scans(database: Database, session_id: str) -> list[ScanLine]:
    with database.session() as db:
        _require_session(db, session_id)
        return [
            ScanLine(s.id, s.session_id, s.sku, s.qty, s.scanned_at)
            for s in store.list_scans(db, session_id)
        ]


def _require_session(db: Session, session_id: str) -> None:
    # the id alone: a checkout service may see which sessions exist, not what they hold
    known = db.scalar(sa.select(ShoppingSession.id).where(ShoppingSession.id == session_id))
    if known is None:
        raise NotFoundError(
            f"no session {session_id!r}; `cartmem sessions list` shows the known ones."
        )
