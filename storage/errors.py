"""Errors the storage layer raises for conditions a caller can act on."""


class StorageError(Exception):
    """Base of storage errors."""


class AlreadyExistsError(StorageError):
    """A row with the same key is already stored."""


class RowNotFoundError(StorageError):
    """The row asked for does not exist."""
