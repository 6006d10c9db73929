"""Errors the storage layer raises for conditions a caller can act on."""


class StorageError(Exception):
    """Base of storage errors."""


class AlreadyExistsError(StorageError):
    """A row with the same key is already stored."""


class RowNotFoundError(StorageError):
    """The row asked for does not exist."""


class FencedError(StorageError):
    """Another worker took these partitions over: this one must not write their state."""

    def __init__(self, partitions: list[tuple[str, int]]) -> None:
        self.partitions = partitions
        names = ", ".join(f"{topic}[{partition}]" for topic, partition in partitions)
        super().__init__(
            f"Partitions {names} now belong to another worker (their owner epoch moved on); "
            "this worker's commit for them was refused."
        )


class RoleMissingError(StorageError):
    """A component's group role does not exist and this user may not create it."""
