"""staff reviews of flags, and the webhook deliveries owed to the till

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:00:00

``flag_reviews`` keeps every verdict staff gave on a flag (confirmed or dismissed, who,
when, why), append-only: recomputing a reconciliation replaces its row, never a review,
and the latest review of a (session, sku) is its current verdict. Each review keeps the
flag as it was when reviewed, so it stays labelled data after the flag changes.

``webhook_deliveries`` is an outbox: a row is written in the transaction that stores a
reconciliation, so a stored reconciliation always has its delivery owed, and a delivery
is never owed for a reconciliation that rolled back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JsonValue = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "flag_reviews",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column(
            "session_id",
            sa.String(length=128),
            sa.ForeignKey(
                "sessions.id", ondelete="CASCADE", name="fk_flag_reviews_session_id_sessions"
            ),
            nullable=False,
        ),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(length=255), nullable=False),
        sa.Column("flag", JsonValue, nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column(
            "reviewed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "verdict IN ('confirmed', 'dismissed')", name="ck_flag_reviews_verdict_valid"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flag_reviews"),
    )
    op.create_index("ix_flag_reviews_session_id", "flag_reviews", ["session_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column(
            "session_id",
            sa.String(length=128),
            sa.ForeignKey(
                "sessions.id",
                ondelete="CASCADE",
                name="fk_webhook_deliveries_session_id_sessions",
            ),
            nullable=False,
        ),
        sa.Column("payload", JsonValue, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["delivered_at", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_flag_reviews_session_id", table_name="flag_reviews")
    op.drop_table("flag_reviews")
