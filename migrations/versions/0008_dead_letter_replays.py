"""dead letters remember their replay

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:00:00

``cartmem deadletters replay ID`` sends a dead-lettered message again once its cause is
fixed; the row keeps when, and the offset it went to, so it is not replayed twice by
mistake and an operator can follow it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("replayed_offset", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("replayed_offset")
        batch.drop_column("replayed_at")
