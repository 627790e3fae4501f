"""Initial schema: datasets, their keys, snapshot versions and refresh runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("ttl_seconds", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text()),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("fetched_at", TZ, nullable=False),
        sa.Column("verified_at", TZ, nullable=False),
        sa.UniqueConstraint("dataset", "key", "version", name="snapshots_dataset_key_version_key"),
    )
    op.create_index(
        "snapshots_dataset_key_fetched_at_idx", "snapshots", ["dataset", "key", "fetched_at"]
    )
    op.create_table(
        "dataset_keys",
        sa.Column(
            "dataset",
            sa.Text(),
            sa.ForeignKey("datasets.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column(
            "source",
            sa.Text(),
            sa.CheckConstraint("source IN ('config', 'demand')"),
            nullable=False,
        ),
        sa.Column("registered_at", TZ, nullable=False),
        sa.Column("next_refresh_at", TZ),
        sa.Column(
            "latest_snapshot_id",
            sa.BigInteger(),
            sa.ForeignKey("snapshots.id", ondelete="SET NULL"),
        ),
        sa.Column("last_refresh_at", TZ),
        sa.Column("last_outcome", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sa.Column(
            "consecutive_failures", sa.Integer(), nullable=False, server_default=sa.text("0")
        ),
    )
    op.create_table(
        "refresh_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column(
            "trigger",
            sa.Text(),
            sa.CheckConstraint("trigger IN ('schedule', 'demand', 'miss')"),
            nullable=False,
        ),
        sa.Column(
            "outcome",
            sa.Text(),
            sa.CheckConstraint("outcome IN ('changed', 'unchanged', 'failed', 'rejected')"),
            nullable=False,
        ),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=False),
        sa.Column("upstream_requests", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column(
            "snapshot_id", sa.BigInteger(), sa.ForeignKey("snapshots.id", ondelete="SET NULL")
        ),
    )
    op.create_index(
        "refresh_runs_dataset_key_started_at_idx", "refresh_runs", ["dataset", "key", "started_at"]
    )


def downgrade() -> None:
    op.drop_table("refresh_runs")
    op.drop_table("dataset_keys")
    op.drop_table("snapshots")
    op.drop_table("datasets")
