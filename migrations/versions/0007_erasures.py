"""erasures: the audit row an erased session leaves

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:00:00

``cartmem sessions delete ID`` removes every row of a shopping session (its right to
erasure); what stays is this one row saying that it happened, when, at whose request and
how many rows went from which table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JsonValue = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("erased_by", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("rows_deleted", JsonValue, nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_erasures"),
    )
    op.create_index("ix_erasures_session_id", "erasures", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_erasures_session_id", table_name="erasures")
    op.drop_table("erasures")
