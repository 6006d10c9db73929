"""Errors of the synthetic dataset code a caller can act on; messages are one sentence."""

from model.errors import ModelError


class SynthError(ModelError):
    """Base of every error ``model.synth`` raises on purpose."""


class SynthConfigError(SynthError, ValueError):
    """A generator setting or argument cannot produce a dataset."""


class OutputExistsError(SynthError):
    """The output directory already holds files and overwriting was not asked for."""


class DatasetError(SynthError):
    """A dataset directory is missing a file, is malformed, or has an unknown format version."""
