"""Secrets: read from files (Docker and Kubernetes secrets), masked wherever they are shown."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from app.errors import SettingsError
from app.logs import JsonFormatter, TextFormatter
from app.settings import Settings, mask_secrets, shown_database_url

SECRET_VARIABLES = {
    "CARTMEM_DATABASE_URL": "postgresql://u:db-Pa55word@db/cartmem",
    "CARTMEM_KAFKA_SASL_PASSWORD": "kafka-Pa55word",
    "CARTMEM_WEBHOOK_SECRET": "webhook-key-1234",
}


def written(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("variable", sorted(SECRET_VARIABLES))
def test_every_secret_is_read_from_the_file_its_FILE_variable_names(
    tmp_path: Path, variable: str
) -> None:
    env = {
        "CARTMEM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CARTMEM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "CARTMEM_WEBHOOK_URL": "https://till.example/hook",
        "CARTMEM_WEBHOOK_SECRET": "other-key-5678",
    }
    env.pop(variable, None)
    value = SECRET_VARIABLES[variable]
    env[f"{variable}_FILE"] = written(tmp_path, "secret", value + "\n")  # as `echo` writes it
    settings = Settings.from_env(env)
    field = variable.removeprefix("CARTMEM_").lower()
    expected = (
        "postgresql+psycopg2" + value.removeprefix("postgresql") if "URL" in variable else value
    )
    assert getattr(settings, field) == expected


def test_a_file_variable_beside_its_variable_is_refused(tmp_path: Path) -> None:
    env = {
        "CARTMEM_WEBHOOK_SECRET": "inline-key",
        "CARTMEM_WEBHOOK_SECRET_FILE": written(tmp_path, "secret", "file-key"),
    }
    with pytest.raises(SettingsError, match="CARTMEM_WEBHOOK_SECRET_FILE, not both"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("content", "reason"), [(None, "cannot be read"), ("\n", "empty"), (b"\xff\xfe", "UTF-8")]
)
def test_an_unusable_secret_file_is_one_sentence_without_its_content(
    tmp_path: Path, content: str | bytes | None, reason: str
) -> None:
    path = tmp_path / "secret"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"CARTMEM_DATABASE_URL_FILE": str(path)})
    message = str(info.value)
    assert "CARTMEM_DATABASE_URL_FILE" in message and str(path) in message and reason in message
    assert message.endswith(".") and "\n" not in message


def test_only_secrets_are_read_from_files(tmp_path: Path) -> None:
    env = {"CARTMEM_TOPIC_FILE": written(tmp_path, "topic", "from-a-file")}
    assert Settings.from_env(env).topic == "cartmem.video"


def test_a_password_anywhere_in_the_url_is_masked() -> None:
    url = "postgresql+psycopg2://u:hunter22@db/cartmem?sslmode=verify-full&sslpassword=keypass1"
    shown = shown_database_url(url)
    assert "hunter22" not in shown and "keypass1" not in shown
    assert "sslmode=verify-full" in shown and "u:***@db" in shown
    in_query = shown_database_url("postgresql+psycopg2://u@db/cartmem?password=hunter22")
    assert "hunter22" not in in_query and "password=***" in in_query


def test_repr_and_redacted_never_hold_a_secret() -> None:
    settings = Settings(
        database_url="postgresql://u:hunter22@db/cartmem?password=querypw9",
        kafka_sasl_password="kafka-Pa55word",
        webhook_url="https://till.example/hook",
        webhook_secret="webhook-key-1234",
    )
    secrets = ("hunter22", "querypw9", "kafka-Pa55word", "webhook-key-1234")
    assert set(settings.secret_values()) == set(secrets)
    for text in (repr(settings), json.dumps(settings.redacted())):
        assert not any(s in text for s in secrets), text
    assert settings.redacted()["CARTMEM_DATABASE_URL"].startswith("postgresql+psycopg2://u:***@")


def test_masking_leaves_short_secrets_and_other_text_alone() -> None:
    assert mask_secrets("user ab logged in with abcdef", ["abcdef", "ab"]) == (
        "user ab logged in with ***"
    )


@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
def test_log_lines_mask_the_secrets_they_were_given(formatter: type[logging.Formatter]) -> None:
    secret = 'pa"ss\\word'  # JSON escapes both characters: masked before encoding
    try:
        raise RuntimeError(f"connect failed with password {secret}")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "cartmem.db", logging.ERROR, __file__, 1, "dsn password=%s", (secret,), exc_info
    )
    record.session = f"s-{secret}"
    # both formatters take secrets; the declared type, logging.Formatter, does not
    line = formatter([secret]).format(record)  # type: ignore[call-arg]
    assert secret not in line and json.dumps(secret)[1:-1] not in line, line
    assert line.count("***") == 3, line  # the message, the traceback, the context
