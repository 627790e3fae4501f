"""Refresh requests from API replicas to the active worker (answered through LISTEN/NOTIFY),
and the active worker's heartbeat (so a new leader knows whether to wait out an old one).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "refresh_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("accept_shrink", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("looked_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("requested_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Text(),
            sa.CheckConstraint(
                "status IN ('pending', 'claimed', 'started', 'refused', 'finished', 'expired')"
            ),
            nullable=False,
        ),
        sa.Column("run_id", sa.BigInteger()),
        sa.Column("joined", sa.Boolean()),
        sa.Column("outcome", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("error_code", sa.Text()),
        sa.Column("retry_after", sa.Integer()),
        sa.Column("not_found", sa.Boolean()),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), nullable=False),
    )
    op.create_index(
        "refresh_requests_pending_idx",
        "refresh_requests",
        ["id"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("refresh_requests_updated_at_idx", "refresh_requests", ["updated_at"])
    op.create_table(
        "worker_leader",
        sa.Column("id", sa.Integer(), sa.CheckConstraint("id = 1"), primary_key=True),
        sa.Column("instance", sa.Text(), nullable=False),
        sa.Column("heartbeat_at", sa.TIMESTAMP(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("worker_leader")
    op.drop_table("refresh_requests")
