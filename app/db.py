"""The database as the app sees it: engine from settings, schema migrations, readable failures."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

import migrations
from app.errors import DatabasePermissionError, DatabaseUnavailableError, SchemaMissingError
from app.settings import Settings, env_name, mask_secrets, shown_database_url
from storage import make_engine, roles, session_factory


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the packaged ``migrations`` and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    # ConfigParser interpolation treats % specially; URL-encoded passwords contain it
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None, "migrations/ has no versions"
    return head


@contextlib.contextmanager
def reachable(settings: Settings) -> Iterator[None]:
    """Turn 'cannot connect' (or 'not allowed') into one sentence naming what to check."""
    shown = shown_database_url(settings.database_url)
    try:
        yield
    except DBAPIError as exc:
        first_line = (str(exc.orig).strip().splitlines() or [""])[0] if exc.orig else str(exc)
        first_line = mask_secrets(first_line, settings.secret_values())
        if getattr(exc.orig, "pgcode", None) == _INSUFFICIENT_PRIVILEGE:
            user = sa.make_url(settings.database_url).username
            raise DatabasePermissionError(
                f"the database refused this to {user} ({first_line}); its role may not do "
                "it: docs/SECURITY.md says which role each command needs."
            ) from None
        if _is_missing_table(exc):
            raise SchemaMissingError(
                f"the database at {shown} has no cartmem tables ({first_line}); "
                "run `cartmem db upgrade` first."
            ) from None
        if not isinstance(exc, OperationalError):
            raise
        raise DatabaseUnavailableError(
            f"cannot reach the database at {shown} ({first_line}); "
            f"check {env_name('database_url')} and that the server is running."
        ) from None


_INSUFFICIENT_PRIVILEGE = "42501"


def _is_missing_table(exc: DBAPIError) -> bool:
    # 42P01 is PostgreSQL's undefined_table; SQLite only says it in words
    return getattr(exc.orig, "pgcode", None) == "42P01" or "no such table" in str(exc.orig)


def upgrade(settings: Settings, revision: str = "head") -> str:
    """Migrate to ``revision`` and return the revision reached; a second run changes nothing.

    On PostgreSQL at the head, the component roles get exactly their rights again
    (``storage.roles``): a table a migration added gets its grants without a migration of
    its own.
    """
    with reachable(settings):
        command.upgrade(alembic_config(settings.database_url), revision)
    reached = current_revision(settings) or "base"
    if reached == head_revision() and settings.database_backend == "postgresql":
        with connection(settings) as conn:
            roles.apply(conn)
    return reached


def downgrade(settings: Settings, revision: str = "base") -> None:
    with reachable(settings):
        command.downgrade(alembic_config(settings.database_url), revision)


@contextlib.contextmanager
def connection(settings: Settings) -> Iterator[sa.Connection]:
    """A connection of its own in a transaction (committed on success), for one-off work."""
    engine = make_engine(settings.database_url)
    try:
        with reachable(settings), engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    engine = make_engine(settings.database_url)
    try:
        with reachable(settings), engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


class Database:
    """An engine plus session factory built once from settings and passed down."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self._sessions = session_factory(self.engine)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with reachable(self.settings), self._sessions.begin() as db:
            yield db

    def ping(self) -> None:
        """``SELECT 1``; :class:`DatabaseUnavailableError` when the server does not answer."""
        with reachable(self.settings), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
