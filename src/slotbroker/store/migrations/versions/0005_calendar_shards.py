"""calendar generation in 16 shards

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 20:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARDS = 16  # written out: this revision must not change when the code's constant does
STATE = sa.table("calendar_state", sa.column("id", sa.Integer), sa.column("generation", sa.BigInteger))


def upgrade() -> None:
    op.bulk_insert(STATE, [{"id": i, "generation": 0} for i in range(2, SHARDS + 1)])


def downgrade() -> None:
    # Fold the shards back into row 1 so the generation never goes backwards.
    op.execute(
        STATE.update()
        .where(STATE.c.id == 1)
        .values(generation=sa.select(sa.func.sum(STATE.c.generation)).scalar_subquery())
    )
    op.execute(STATE.delete().where(STATE.c.id > 1))
