"""a version number on each stored memory, raised each time its arrays are written

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 20:00:00

Since ingest stores a session's memory every few clips (issue 18), most commits change a
memory row's pending frames but not the memory, and ``updated_at`` moves with every one
of them. Answer workers keyed their device cache on ``updated_at`` and so read the whole
memory again after each commit. ``memory_version`` changes only when the memory itself
is written; a count rather than a time, since SQLite's clock has whole seconds and two
saves may fall in one. Existing rows start at 0: a worker's first read caches them as
version 0, and the next save makes it 1.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session_memories") as batch:
        batch.add_column(
            sa.Column("memory_version", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("session_memories") as batch:
        batch.drop_column("memory_version")
