"""Errors a caller of ``app`` can act on; each message is one sentence a person can follow."""


class CartmemError(Exception):
    """Base of every error the CLI turns into a one-sentence message and a non-zero exit."""


class SettingsError(CartmemError):
    """A ``CARTMEM_*`` environment variable holds a value that cannot be used."""


class BrokerUnavailableError(CartmemError):
    """The Kafka brokers named by ``CARTMEM_KAFKA_BOOTSTRAP_SERVERS`` could not be reached."""


class DatabaseUnavailableError(CartmemError):
    """The database named by ``CARTMEM_DATABASE_URL`` could not be reached."""


class DatabasePermissionError(CartmemError):
    """The database refused the user this process logs in as (its role lacks the right)."""


class SchemaMissingError(CartmemError):
    """The database is reachable but was never migrated (``cartmem db upgrade`` fixes it)."""


class DevStackError(CartmemError):
    """A local development service (Kafka broker or PostgreSQL) could not be started or found."""


class NotFoundError(CartmemError):
    """A session, product or query named by the user does not exist."""


class InvalidInputError(CartmemError):
    """A value given by the user (an image file, a SKU, a time window) is not acceptable."""


class VideoError(CartmemError):
    """A video file or chunk cannot be read, or breaks a configured limit."""
