"""`cartmem db roles` without a server: login users from URL files, SQLite refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import db_roles
from app.errors import InvalidInputError, SettingsError
from app.settings import Settings


def test_a_login_takes_user_and_password_from_the_components_url_file(tmp_path: Path) -> None:
    path = tmp_path / "ingest_database_url"
    path.write_text("postgresql+psycopg2://ingest_1:s3cret-pw@db:5432/cartmem\n")
    login = db_roles.login_from_url_file("ingest", path)
    assert (login.component, login.user, login.password) == ("ingest", "ingest_1", "s3cret-pw")
    assert "s3cret-pw" not in repr(login)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read"),
        ("not a url", "does not hold a database URL"),
        ("postgresql://db/cartmem", "names no user"),
    ],
)
def test_an_unusable_url_file_is_one_sentence(
    tmp_path: Path, content: str | None, words: str
) -> None:
    path = tmp_path / "url"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InvalidInputError, match=words):
        db_roles.login_from_url_file("ingest", path)


def test_an_unknown_component_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="ingest, answer, checkout, staff"):
        db_roles.login("owner", "someone")


def test_sqlite_has_no_roles(sqlite_settings: Settings) -> None:
    with pytest.raises(SettingsError, match="PostgreSQL"):
        db_roles.manage_roles(sqlite_settings)
