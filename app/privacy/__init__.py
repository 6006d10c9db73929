"""Shopper data: how long each kind is kept (retention), and erasing one session on request."""

from app.privacy.erase import ErasureReport, erase_session
from app.privacy.purge import PurgeReport, RetentionPolicy, purge

__all__ = ["ErasureReport", "PurgeReport", "RetentionPolicy", "erase_session", "purge"]
