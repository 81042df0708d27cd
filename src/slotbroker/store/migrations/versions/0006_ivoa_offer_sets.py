"""IVOA offer-set documents

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ivoa_offer_sets",
        sa.Column("offer_set_id", sa.String(length=36), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("created_s", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("offer_set_id", name=op.f("pk_ivoa_offer_sets")),
    )


def downgrade() -> None:
    op.drop_table("ivoa_offer_sets")
