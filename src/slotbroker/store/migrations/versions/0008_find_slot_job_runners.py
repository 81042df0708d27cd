"""find_slot_jobs.runner_until_s and runs: a replica takes over a job whose process died

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("find_slot_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("runner_until_s", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("runs", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("find_slot_jobs", schema=None) as batch_op:
        batch_op.drop_column("runs")
        batch_op.drop_column("runner_until_s")
