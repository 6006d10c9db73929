"""small pictures of each session's video, kept as the evidence behind its flags

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:00:00

Staff check a flag by looking at the moment it rests on, and the video is gone by then
(Kafka keeps chunks for its retention only; the memory holds tokens, not pixels). Ingest
now keeps a few small JPEG thumbnails per session (``CARTMEM_EVIDENCE_*``: a low rate,
a bounded number of bytes) in ``evidence_thumbnails``, written in the ingest commit's
transaction. The key (session, video time in microseconds) makes a replayed commit
unable to store a moment twice.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence_thumbnails",
        sa.Column(
            "session_id",
            sa.String(length=128),
            sa.ForeignKey(
                "sessions.id", ondelete="CASCADE", name="fk_evidence_thumbnails_session_id_sessions"
            ),
            nullable=False,
        ),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "time_us", name="pk_evidence_thumbnails"),
    )


def downgrade() -> None:
    op.drop_table("evidence_thumbnails")
