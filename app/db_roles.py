"""``cartmem db roles``: the component roles of PostgreSQL and who logs in as which.

The rights themselves are ``storage.privileges``; ``storage.roles`` turns them into SQL.
This module adds what an operator brings: login users, named directly or by the database
URL a component reads (``CARTMEM_DATABASE_URL_FILE``), whose password then need not be
typed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError

from app import db as database
from app.errors import InvalidInputError, SettingsError
from app.settings import Settings
from storage import roles
from storage.errors import RoleMissingError
from storage.privileges import COMPONENTS


@dataclass(frozen=True)
class RolesReport:
    applied: bool  # False: only planned, ``statements`` is the SQL for a person to run
    statements: list[str]  # passwords shown as ***
    created: list[str]  # group roles created now
    missing: list[str]  # group roles absent that this user may not create
    members: dict[str, list[str]]  # group role -> login users, as the server has them now


def login(component: str, user: str) -> roles.Login:
    """A login user ``user`` for ``component``, its password left as it is."""
    _check_component(component)
    if not user:
        raise InvalidInputError(f"--login {component}= needs a user name.")
    return roles.Login(component, user)


def login_from_url_file(component: str, path: Path) -> roles.Login:
    """The user and password of the database URL stored in ``path``: the file that
    component reads through ``CARTMEM_DATABASE_URL_FILE``."""
    _check_component(component)
    try:
        url = sa.make_url(Path(path).read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path} ({exc.strerror}).") from None
    except ArgumentError:
        raise InvalidInputError(f"{path} does not hold a database URL.") from None
    if not url.username:
        raise InvalidInputError(f"the database URL in {path} names no user.")
    return roles.Login(component, url.username, url.password)


def manage_roles(
    settings: Settings, logins: Sequence[roles.Login] = (), *, apply: bool = False
) -> RolesReport:
    """Plan (or, with ``apply``, run) the roles' rights in this database and ``logins``."""
    if settings.database_backend != "postgresql":
        raise SettingsError(
            "database roles need PostgreSQL: SQLite (the embedded default) has no users; "
            "point CARTMEM_DATABASE_URL at PostgreSQL."
        )
    with database.connection(settings) as conn:
        try:
            plan = roles.apply(conn, logins) if apply else roles.plan(conn, logins)
        except RoleMissingError as exc:
            raise SettingsError(
                f"{exc}; run this as a user with CREATEROLE (or the server's superuser)."
            ) from None
        members = roles.members(conn)
    return RolesReport(apply, plan.shown(), plan.created, plan.missing, members)


def _check_component(component: str) -> None:
    if component not in COMPONENTS:
        raise InvalidInputError(
            f"{component!r} is not a component; use one of {', '.join(COMPONENTS)}."
        )
