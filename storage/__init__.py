"""Durable state of cartmem in SQLAlchemy 2.0 models; knows nothing of torch, Kafka or the app."""

from storage.catalog import add_product, get_product, list_products
from storage.engine import make_engine, session_factory
from storage.errors import AlreadyExistsError, RowNotFoundError, StorageError
from storage.models import (
    Answer,
    ArrayPart,
    Base,
    DeadLetter,
    EvidenceThumbnail,
    MemoryArray,
    PartitionOffset,
    Product,
    Query,
    QueryKind,
    QueryStatus,
    Reconciliation,
    Scan,
    SessionMemory,
    SessionStatus,
    ShoppingSession,
)
from storage.sessions import SessionSummary, get_session, list_sessions

__all__ = [
    "AlreadyExistsError",
    "Answer",
    "ArrayPart",
    "Base",
    "DeadLetter",
    "EvidenceThumbnail",
    "MemoryArray",
    "PartitionOffset",
    "Product",
    "Query",
    "QueryKind",
    "QueryStatus",
    "Reconciliation",
    "RowNotFoundError",
    "Scan",
    "SessionMemory",
    "SessionStatus",
    "SessionSummary",
    "ShoppingSession",
    "StorageError",
    "add_product",
    "get_product",
    "get_session",
    "list_products",
    "list_sessions",
    "make_engine",
    "session_factory",
]
