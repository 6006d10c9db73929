"""component roles: cartmem_ingest, cartmem_answer, cartmem_checkout, cartmem_staff

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 10:00:00

Least privilege (docs/SECURITY.md): one NOLOGIN group role per component, granted only
what that component's code does (``storage.privileges``). PostgreSQL only; SQLite has no
roles. The roles are created when the migrating user may create roles; otherwise the
rights go to those that exist and ``cartmem db roles --apply``, run by a user who may,
creates the rest. Later tables need no migration of their own for their rights:
``cartmem db upgrade`` applies the current list after every upgrade (not ALTER DEFAULT
PRIVILEGES, which would give every future table the same rights). Downgrading takes the
rights back and keeps the roles, which the server's other databases may use.
"""

import logging
from collections.abc import Sequence

from alembic import op

from storage import roles

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("cartmem.db")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    applied = roles.apply(op.get_bind())
    if applied.missing:
        log.warning(
            "roles %s are missing and this user may not create them; run "
            "`cartmem db roles --apply` as a user who may (docs/SECURITY.md)",
            ", ".join(applied.missing),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        roles.revoke(op.get_bind())
