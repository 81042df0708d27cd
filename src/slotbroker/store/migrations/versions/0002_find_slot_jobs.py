"""find-slot jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 20:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "find_slot_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_s", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_find_slot_jobs")),
    )
    with op.batch_alter_table("find_slot_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_find_slot_jobs_project"), ["project"], unique=False)
        batch_op.create_index(batch_op.f("ix_find_slot_jobs_expires_s"), ["expires_s"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("find_slot_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_find_slot_jobs_expires_s"))
        batch_op.drop_index(batch_op.f("ix_find_slot_jobs_project"))
    op.drop_table("find_slot_jobs")
