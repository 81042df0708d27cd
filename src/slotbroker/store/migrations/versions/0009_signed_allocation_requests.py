"""Allocation request ids carry their own content, signed: no row per id; broker_secrets holds the key

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 16:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broker_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_broker_secrets")),
    )
    with op.batch_alter_table("allocation_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allocation_requests_project"))
        batch_op.drop_index(batch_op.f("ix_allocation_requests_expires_s"))
    op.drop_table("allocation_requests")


def downgrade() -> None:
    op.create_table(
        "allocation_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_s", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_requests")),
    )
    with op.batch_alter_table("allocation_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allocation_requests_expires_s"), ["expires_s"], unique=False)
        batch_op.create_index(batch_op.f("ix_allocation_requests_project"), ["project"], unique=False)
    op.drop_table("broker_secrets")
