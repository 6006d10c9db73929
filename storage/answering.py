"""What the query worker reads to answer a batch: the sessions with their memories' state,
the catalog, and the memories' arrays; each a single query whatever the batch size."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.ingest_state import ArrayBlob
from storage.models import ArrayPart, MemoryArray, Product, SessionMemory, ShoppingSession


@dataclass(frozen=True)
class SessionState:
    """A session as the query worker needs it: open or not, and its stored memory's state."""

    session_id: str
    status: str
    frames_seen: int  # in the stored memory; 0 without one
    memory_version: int | None  # raised by each save of the memory; None: no memory row
    memory_fps: float | None  # frames per second the memory was written at


@dataclass(frozen=True)
class CatalogEntry:
    sku: str
    name: str
    image_sha256: str


def session_states(db: Session, session_ids: Collection[str]) -> dict[str, SessionState]:
    """The known sessions among ``session_ids``, with their memories' state."""
    rows = db.execute(
        sa.select(
            ShoppingSession.id,
            ShoppingSession.status,
            SessionMemory.frames_seen,
            SessionMemory.memory_version,
            SessionMemory.fps,
        )
        .outerjoin(SessionMemory, SessionMemory.session_id == ShoppingSession.id)
        .where(ShoppingSession.id.in_(list(session_ids)))
    ).all()
    return {
        sid: SessionState(sid, status, int(frames or 0), version, fps)
        for sid, status, frames, version, fps in rows
    }


def catalog_entries(db: Session) -> dict[str, CatalogEntry]:
    """Every product's SKU, name and image hash (not the image: see ``product_images``)."""
    rows = db.execute(sa.select(Product.sku, Product.name, Product.image_sha256)).all()
    return {sku: CatalogEntry(sku, name, sha) for sku, name, sha in rows}


def product_images(db: Session, skus: Collection[str]) -> dict[str, bytes]:
    """The catalog PNGs of ``skus`` (those the catalog has)."""
    if not skus:
        return {}
    rows = db.execute(
        sa.select(Product.sku, Product.image_png).where(Product.sku.in_(list(skus)))
    ).all()
    return {sku: png for sku, png in rows}


def memory_arrays(db: Session, session_ids: Collection[str]) -> dict[str, list[ArrayBlob]]:
    """The stored memory arrays (not pending clips, not the band) of those of
    ``session_ids`` that have one."""
    rows = db.scalars(
        sa.select(MemoryArray).where(
            MemoryArray.session_id.in_(list(session_ids)),
            MemoryArray.part == ArrayPart.MEMORY.value,
        )
    ).all()
    out: dict[str, list[ArrayBlob]] = {}
    for a in rows:
        out.setdefault(a.session_id, []).append(ArrayBlob(a.name, a.dtype, tuple(a.shape), a.data))
    return out


def band_array(db: Session, session_id: str, name: str) -> ArrayBlob | None:
    """One named array of the band stored beside the session's memory, or None."""
    row = db.scalars(
        sa.select(MemoryArray).where(
            MemoryArray.session_id == session_id,
            MemoryArray.part == ArrayPart.BAND.value,
            MemoryArray.name == name,
        )
    ).one_or_none()
    return None if row is None else ArrayBlob(row.name, row.dtype, tuple(row.shape), row.data)
