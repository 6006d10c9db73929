"""the cart band kept in its own part of memory_arrays

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 15:00:00

Since session 32 the ingest worker keeps the cart band of every memory step beside the
memory (``cart_cells``). It was stored as one more array of the ``memory`` part, so every
reader of the memory had to leave it out by name, and the answer worker (which loads the
memory onto the GPU) did. The band now has its own part, ``band``, written and replaced
with the memory; existing bands move there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the band's one array, as ``app.video.cart_band.ARRAY_NAME`` names it
BAND_ARRAY = "cart_cells"


def _allow(parts: str) -> None:
    with op.batch_alter_table("memory_arrays") as batch:
        batch.drop_constraint(op.f("ck_memory_arrays_part_valid"), type_="check")
        batch.create_check_constraint(op.f("ck_memory_arrays_part_valid"), f"part IN ({parts})")


def upgrade() -> None:
    _allow("'memory', 'pending', 'band'")
    op.execute(
        f"UPDATE memory_arrays SET part = 'band' WHERE part = 'memory' AND name = '{BAND_ARRAY}'"
    )


def downgrade() -> None:
    op.execute(
        f"UPDATE memory_arrays SET part = 'memory' WHERE part = 'band' AND name = '{BAND_ARRAY}'"
    )
    op.execute("DELETE FROM memory_arrays WHERE part = 'band'")
    _allow("'memory', 'pending'")
