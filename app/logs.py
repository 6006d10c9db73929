"""Log lines of the workers, for people (text) or for log collectors (JSON), from settings.

A line's context travels as ``extra=`` on the logging call, under the names in
``CONTEXT_FIELDS``: ``log.info("...", extra={"query_id": 12, "session": "s1"})``. Only those
names reach a line. A formatter that wrote out every attribute of a record would print
whatever a caller attached to it, settings and their secrets included. And should a
message itself hold a secret (a library's error that quotes its configuration), the
formatters of ``configure_logging`` mask the settings' secrets in every line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from app.settings import Settings, mask_secrets

#: what a line may say about where it comes from, in this order
CONTEXT_FIELDS = (
    "session",
    "query_id",
    "kind",
    "topic",
    "partition",
    "offset",
    "attempts",
    "worker",
)
_HANDLER_NAME = "cartmem"  # ours, so that configuring again replaces it and nothing else
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The context fields a record carries, in ``CONTEXT_FIELDS`` order."""
    found = {name: getattr(record, name, None) for name in CONTEXT_FIELDS}
    return {name: value for name, value in found.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, context;
    ``secrets`` are masked wherever they occur."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context_of(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # masked before encoding: JSON escapes would hide a secret holding " or \ from a
        # search of the encoded line
        line = {
            k: mask_secrets(v, self.secrets) if isinstance(v, str) else v for k, v in line.items()
        }
        # default=str: a context value of an odd type still makes a line, never an error
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The familiar line, with the context as ``key=value`` pairs at its end; ``secrets``
    are masked wherever they occur."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__(_TEXT)
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = context_of(record)
        if fields:
            pairs = " ".join(f"{k}={v}" for k, v in fields.items())
            head, newline, rest = text.partition("\n")  # a traceback stays below the line
            text = f"{head} [{pairs}]{newline}{rest}"
        return mask_secrets(text, self.secrets)


def configure_logging(settings: Settings) -> None:
    """Send log lines to stderr in ``CARTMEM_LOG_FORMAT`` from ``CARTMEM_LOG_LEVEL`` up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.name = _HANDLER_NAME
    secrets = settings.secret_values()
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    handler.setFormatter(formatter(secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
