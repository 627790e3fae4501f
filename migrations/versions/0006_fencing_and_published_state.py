"""Fencing and one truth for budgets: the leader's epoch, which instance stored each run, what
a cold miss had seen (a run id, not a host's clock), and the budgets the active worker publishes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "worker_leader", sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("refresh_runs", sa.Column("instance", sa.Text()))
    op.add_column("refresh_requests", sa.Column("seen_run_id", sa.BigInteger()))
    op.drop_column("refresh_requests", "looked_at")
    op.create_table(
        "provider_states",
        sa.Column("provider", sa.Text(), primary_key=True),
        sa.Column("instance", sa.Text(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("published_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("state", JSONB(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("provider_states")
    op.add_column("refresh_requests", sa.Column("looked_at", sa.TIMESTAMP(timezone=True)))
    op.drop_column("refresh_requests", "seen_run_id")
    op.drop_column("refresh_runs", "instance")
    op.drop_column("worker_leader", "epoch")
