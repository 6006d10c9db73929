"""the memory's frames per second as a column

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 07:00:00

A memory's time index counts steps of 1 / fps seconds at the rate ingest wrote it. Until
now that rate travelled only in ``session_memories.pending_info`` (JSON) and the answer
worker took its own setting instead, so a worker configured for another rate answered in
the wrong seconds. ``fps`` is now a column every reader uses; existing rows take it from
``pending_info``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

memories = sa.table(
    "session_memories",
    sa.column("session_id", sa.String),
    sa.column("pending_info", sa.JSON),
    sa.column("fps", sa.Float),
)


def upgrade() -> None:
    with op.batch_alter_table("session_memories") as batch:
        batch.add_column(sa.Column("fps", sa.Float(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(memories.c.session_id, memories.c.pending_info)).all()
    for session_id, info in rows:
        fps = (info or {}).get("fps") if isinstance(info, dict) else None
        if isinstance(fps, int | float) and fps > 0:
            bind.execute(
                memories.update().where(memories.c.session_id == session_id).values(fps=float(fps))
            )


def downgrade() -> None:
    with op.batch_alter_table("session_memories") as batch:
        batch.drop_column("fps")
