"""Key read tracking (idle retirement) and shrink-guard bookkeeping.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
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
    op.add_column("dataset_keys", sa.Column("last_read_at", sa.TIMESTAMP(timezone=True)))
    op.add_column(
        "dataset_keys",
        sa.Column(
            "consecutive_rejections", sa.Integer(), nullable=False, server_default=sa.text("0")
        ),
    )
    op.add_column("dataset_keys", sa.Column("rejected_hash", sa.Text()))


def downgrade() -> None:
    op.drop_column("dataset_keys", "rejected_hash")
    op.drop_column("dataset_keys", "consecutive_rejections")
    op.drop_column("dataset_keys", "last_read_at")
