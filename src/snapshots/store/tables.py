"""The schema as SQLAlchemy tables (alembic migrations create it; a test keeps the two equal)."""

from __future__ import annotations

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

TZ = TIMESTAMP(timezone=True)
metadata = MetaData()

datasets = Table(
    "datasets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("provider", Text, nullable=False),  # the provider instance
    Column("kind", Text),  # its provider kind
    Column("definition", Text),  # the kind's dataset the name stands for
    Column("ttl_seconds", Float, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("updated_at", TZ, nullable=False),
)

dataset_keys = Table(
    "dataset_keys",
    metadata,
    Column("dataset", Text, ForeignKey("datasets.name", ondelete="CASCADE"), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("source", Text, CheckConstraint("source IN ('config', 'demand')"), nullable=False),
    Column("registered_at", TZ, nullable=False),
    Column("next_refresh_at", TZ),
    Column("latest_snapshot_id", BigInteger, ForeignKey("snapshots.id", ondelete="SET NULL")),
    Column("last_refresh_at", TZ),
    Column("last_outcome", Text),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("last_read_at", TZ),
    Column("consecutive_rejections", Integer, nullable=False, server_default=text("0")),
    Column("rejected_hash", Text),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dataset", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("fetched_at", TZ, nullable=False),
    Column("verified_at", TZ, nullable=False),
    UniqueConstraint("dataset", "key", "version", name="snapshots_dataset_key_version_key"),
    Index("snapshots_dataset_key_fetched_at_idx", "dataset", "key", "fetched_at"),
)

refresh_runs = Table(
    "refresh_runs",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dataset", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column(
        "trigger",
        Text,
        CheckConstraint("trigger IN ('schedule', 'demand', 'miss')"),
        nullable=False,
    ),
    Column(
        "outcome",
        Text,
        CheckConstraint("outcome IN ('changed', 'unchanged', 'failed', 'rejected')"),
        nullable=False,
    ),
    Column("started_at", TZ, nullable=False),
    Column("finished_at", TZ, nullable=False),
    Column("upstream_requests", Integer, nullable=False),
    Column("error", Text),
    Column("snapshot_id", BigInteger, ForeignKey("snapshots.id", ondelete="SET NULL")),
    Column("instance", Text),  # the worker that stored it (SNAPSHOTS_INSTANCE)
    Index("refresh_runs_dataset_key_started_at_idx", "dataset", "key", "started_at"),
    Index("refresh_runs_finished_at_idx", "finished_at"),
)

refresh_requests = Table(
    "refresh_requests",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dataset", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("forced", Boolean, nullable=False),  # an asked-for refresh (else a cold miss)
    Column("accept_shrink", Boolean, nullable=False, server_default=text("false")),
    Column("seen_run_id", BigInteger),  # a cold miss: the key's newest run the reader had seen
    Column("requested_at", TZ, nullable=False),
    Column(
        "status",
        Text,
        CheckConstraint(
            "status IN ('pending', 'claimed', 'started', 'refused', 'finished', 'expired')"
        ),
        nullable=False,
    ),
    Column("run_id", BigInteger),
    Column("joined", Boolean),
    Column("outcome", Text),
    Column("error", Text),
    Column("error_code", Text),  # refused: the SnapshotsError code (refresh_too_soon, ...)
    Column("retry_after", Integer),
    Column("not_found", Boolean),
    Column("updated_at", TZ, nullable=False),
    Index("refresh_requests_pending_idx", "id", postgresql_where=text("status = 'pending'")),
    Index("refresh_requests_updated_at_idx", "updated_at"),
)

worker_leader = Table(
    "worker_leader",
    metadata,
    Column("id", Integer, CheckConstraint("id = 1"), primary_key=True),
    Column("instance", Text, nullable=False),
    Column("heartbeat_at", TZ),  # NULL after a clean hand-over
    Column("epoch", BigInteger, nullable=False, server_default=text("0")),  # +1 per new leader
)

provider_states = Table(
    "provider_states",
    metadata,
    Column("provider", Text, primary_key=True),
    Column("instance", Text, nullable=False),  # the active worker that published it
    Column("epoch", BigInteger, nullable=False),
    Column("published_at", TZ, nullable=False),  # database time
    Column("state", JSONB, nullable=False),  # budget, plan and upstream answers
)
