"""cartmem service: settings, CLI, ingest and query workers around the ``model`` package."""

from app.errors import CartmemError
from app.settings import Settings

__all__ = ["CartmemError", "Settings"]
