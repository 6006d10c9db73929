"""The component roles on PostgreSQL: created once, granted exactly ``storage.privileges``.

Applying is idempotent and converges: every right of the ``cartmem_*`` group roles in the
schema is taken back and granted again from the list, in one transaction, so a right the
list no longer names goes and a table added by a later migration gets its rights. Roles
belong to the whole server (every database on it); rights belong to this database.

Login users (a service, a person) are members of one group role and have no rights of
their own. A password is sent as a SCRAM-SHA-256 verifier computed here, so the server's
statement log never holds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from storage.errors import RoleMissingError
from storage.privileges import COMPONENTS, GRANTS, clause_parts, inserts_into, role_name

_PREPARER = postgresql.dialect().identifier_preparer
# (group role, member) rows; (group role, None) for one without members
_MEMBERS = (
    "SELECT g.rolname, m.rolname FROM pg_roles g "
    "LEFT JOIN pg_auth_members a ON a.roleid = g.oid "
    "LEFT JOIN pg_roles m ON m.oid = a.member "
    "WHERE g.rolname = ANY(:names) ORDER BY g.rolname, m.rolname"
)
# (table, sequence) rows: sequences owned by a serial (a) or identity (i) column
_SEQUENCES = (
    "SELECT t.relname, s.relname FROM pg_class s "
    "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
    "AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
    "JOIN pg_class t ON t.oid = d.refobjid "
    "WHERE s.relkind = 'S' AND s.relnamespace = current_schema()::regnamespace "
    "ORDER BY s.relname"
)


@dataclass(frozen=True)
class Login:
    """A login user made a member of ``component``'s group role; ``password`` None leaves
    its password as it is (or unset: certificate or peer authentication)."""

    component: str
    user: str
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RolePlan:
    """What applying does: SQL statements in order, then the passwords to set."""

    statements: list[str]
    passwords: dict[str, str] = field(default_factory=dict, repr=False)  # user -> password
    created: list[str] = field(default_factory=list)  # group roles this plan creates
    missing: list[str] = field(default_factory=list)  # absent, and we may not create them

    def shown(self) -> list[str]:
        """The statements for people to read, passwords as ``***``."""
        return [*self.statements, *(f"ALTER ROLE {q(u)} PASSWORD '***'" for u in self.passwords)]


def q(name: str) -> str:
    """``name`` as a PostgreSQL identifier, quoted only where it must be."""
    return str(_PREPARER.quote(name))


def plan(conn: sa.Connection, logins: Sequence[Login] = ()) -> RolePlan:
    """The statements that make this database's rights match ``GRANTS`` (and add ``logins``)."""
    groups = {c: role_name(c) for c in COMPONENTS}
    existing = _existing_roles(conn, list(groups.values()) + [login.user for login in logins])
    may_create = bool(
        conn.scalar(
            sa.text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
        )
    )
    absent = [r for r in groups.values() if r not in existing]
    created = absent if may_create else []
    present = [r for r in groups.values() if r in existing or r in created]
    statements = [_create_role(r, "NOLOGIN") for r in created]
    if present:
        statements += _grants(conn, {c: r for c, r in groups.items() if r in present})
    passwords = {}
    for login in logins:
        group = groups[login.component]
        if login.user not in existing:
            statements.append(_create_role(login.user, "LOGIN"))
        statements.append(f"GRANT {q(group)} TO {q(login.user)}")
        if login.password is not None:
            passwords[login.user] = login.password
    return RolePlan(statements, passwords, created, [r for r in absent if r not in created])


def apply(conn: sa.Connection, logins: Sequence[Login] = ()) -> RolePlan:
    """Run ``plan`` on ``conn`` (the caller's transaction makes it all or nothing)."""
    todo = plan(conn, logins)
    needed = sorted({role_name(login.component) for login in logins} & set(todo.missing))
    if needed:
        user = conn.scalar(sa.text("SELECT current_user"))
        raise RoleMissingError(
            f"role {', '.join(needed)} does not exist and {user} may not create roles"
        )
    for statement in todo.statements:
        conn.exec_driver_sql(statement)
    for user, password in todo.passwords.items():
        conn.exec_driver_sql(
            f"ALTER ROLE {q(user)} PASSWORD %s", (_verifier(conn, user, password),)
        )
    return todo


def revoke(conn: sa.Connection) -> None:
    """Take every right of the group roles in this schema back (the roles stay: other
    databases on the server may use them)."""
    present = sorted(_existing_roles(conn, [role_name(c) for c in COMPONENTS]))
    if present:
        for statement in _revocations(conn, present):
            conn.exec_driver_sql(statement)


def members(conn: sa.Connection) -> dict[str, list[str]]:
    """Group role -> its members (login users), for every group role that exists."""
    return _grouped(conn, _MEMBERS, names=[role_name(c) for c in COMPONENTS])


def _grants(conn: sa.Connection, groups: Mapping[str, str]) -> list[str]:
    schema = conn.scalar(sa.text("SELECT current_schema()"))
    inspector = sa.inspect(conn)
    columns = {
        t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()
    }
    sequences = _sequences(conn)
    statements = _revocations(conn, sorted(groups.values()))
    for component, role in groups.items():
        statements.append(f"GRANT USAGE ON SCHEMA {q(schema)} TO {q(role)}")
        for table, clauses in GRANTS[component].items():
            usable = [c for c in clauses if set(clause_parts(c)[1]) <= columns.get(table, set())]
            if table in columns and usable:
                statements.append(f"GRANT {', '.join(usable)} ON TABLE {q(table)} TO {q(role)}")
        for table in inserts_into(component):
            for sequence in sequences.get(table, []):
                statements.append(f"GRANT USAGE ON SEQUENCE {q(sequence)} TO {q(role)}")
    return statements


def _revocations(conn: sa.Connection, roles: Sequence[str]) -> list[str]:
    schema = q(conn.scalar(sa.text("SELECT current_schema()")))
    who = ", ".join(q(r) for r in roles)
    return [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {who}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {who}",
        f"REVOKE ALL ON SCHEMA {schema} FROM {who}",
    ]


def _sequences(conn: sa.Connection) -> dict[str, list[str]]:
    """Table -> the sequences its serial or identity columns draw from, in this schema."""
    return _grouped(conn, _SEQUENCES)


def _grouped(conn: sa.Connection, sql: str, **params: Any) -> dict[str, list[str]]:
    """The (key, value) rows of ``sql`` as key -> its values in order (a None value only
    makes the key)."""
    found: dict[str, list[str]] = {}
    for key, value in conn.execute(sa.text(sql), params):
        found.setdefault(key, [])
        if value is not None:
            found[key].append(value)
    return found


def _existing_roles(conn: sa.Connection, names: Sequence[str]) -> set[str]:
    rows = conn.scalars(
        sa.text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names)"), {"names": list(names)}
    )
    return set(rows)


def _create_role(name: str, kind: str) -> str:
    # a DO block, so that a role made meanwhile (another database's migration) is no error
    return (
        f"DO $$ BEGIN CREATE ROLE {q(name)} {kind}; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )


def _verifier(conn: sa.Connection, user: str, password: str) -> str:
    from psycopg2.extensions import encrypt_password  # the driver cartmem ships with

    raw = conn.connection.dbapi_connection
    return str(encrypt_password(password, user, raw, "scram-sha-256"))
