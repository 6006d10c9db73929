"""partition owner epoch: fencing a worker that lost its partitions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 13:15:00

Each ``partition_offsets`` row carries the epoch of the worker that owns the partition.
A worker takes a partition by raising the epoch and checks it, under a row lock, in every
checkpoint; one that lost the partition without noticing (a stalled process the group
moved on from) finds a newer epoch and writes nothing. A row may now exist before its
first checkpoint (claimed, no offset yet), so ``next_offset`` becomes nullable.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("partition_offsets") as batch:
        batch.add_column(
            sa.Column("owner_epoch", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch.alter_column("next_offset", existing_type=sa.BigInteger(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM partition_offsets WHERE next_offset IS NULL")
    with op.batch_alter_table("partition_offsets") as batch:
        batch.alter_column("next_offset", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_column("owner_epoch")
