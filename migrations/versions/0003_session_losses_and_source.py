"""session losses and source partition: lost video on record, quiet sessions closable

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 15:00:00

``sessions.losses`` keeps, per session, the video that was lost on the way (a truncated
chunk, a clip the model could not write, a session closed because it went quiet), so that
no loss goes unrecorded. ``source_topic`` / ``source_partition`` name the partition the
session's messages arrive on: its owner is the worker that closes the session when no
message came for ``CARTMEM_SESSION_IDLE_TIMEOUT_S``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JsonValue = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("losses", JsonValue, server_default="[]", nullable=False))
        batch.add_column(sa.Column("source_topic", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("source_partition", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("source_partition")
        batch.drop_column("source_topic")
        batch.drop_column("losses")
