"""Errors a caller of ``model`` can act on; each message is one sentence a person can follow."""


class ModelError(Exception):
    """Base of every error the ``model`` package raises on purpose."""


class ConfigError(ModelError, ValueError):
    """A ``ModelConfig`` field, or a config read from a checkpoint, cannot build a model."""


class CheckpointError(ModelError):
    """A checkpoint directory is missing a file, has an unknown format version, or mismatches."""
