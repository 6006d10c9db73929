"""Log lines: JSON objects with the context that applies, text with it at the end, no secrets."""

from __future__ import annotations

import json
import logging

import pytest

from app.logs import JsonFormatter, TextFormatter, configure_logging
from app.settings import Settings


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(
        "cartmem.answer", logging.INFO, __file__, 1, "query %d answered", (7,), None
    )
    rec.__dict__.update(extra)
    return rec


def test_a_json_line_parses_and_carries_the_context() -> None:
    line = JsonFormatter().format(record(query_id=7, session="shop-1", kind="time"))
    parsed = json.loads(line)
    assert parsed["message"] == "query 7 answered"
    assert parsed["level"] == "INFO" and parsed["logger"] == "cartmem.answer"
    assert (parsed["query_id"], parsed["session"], parsed["kind"]) == (7, "shop-1", "time")
    assert parsed["time"].endswith("+00:00")


def test_only_named_context_reaches_a_line() -> None:
    """A caller that attaches the settings does not get their secrets printed."""
    settings = Settings(kafka_sasl_password="hunter2", webhook_secret="s3cret")
    line = JsonFormatter().format(record(settings=settings, password="hunter2", offset=5))
    assert "hunter2" not in line and "s3cret" not in line
    assert json.loads(line)["offset"] == 5


def test_text_lines_end_with_the_context() -> None:
    formatter = TextFormatter()
    assert formatter.format(record(query_id=7)).endswith("query 7 answered [query_id=7]")
    assert formatter.format(record()).endswith("cartmem.answer: query 7 answered")


def test_configuring_twice_keeps_one_handler_at_the_level_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        configure_logging(Settings(log_format="json", log_level="debug"))
        configure_logging(Settings(log_format="json", log_level="warning"))
        assert sum(h.name == "cartmem" for h in root.handlers) == 1
        assert root.level == logging.WARNING
        logging.getLogger("cartmem.test").warning("hello", extra={"session": "s1"})
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert json.loads(line)["session"] == "s1"
    finally:
        for h in [h for h in root.handlers if h.name == "cartmem"]:
            root.removeHandler(h)
        root.setLevel(before[1])
