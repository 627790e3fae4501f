"""Postgres storage: tables, the values read and written, and every query."""

from snapshots.store.batcher import Coalescer, WriteBatcher
from snapshots.store.queries import Store, create_engine
from snapshots.store.records import (
    DatasetRow,
    DatasetSummary,
    FailureWrite,
    Fencing,
    FetchedPayload,
    KeySource,
    KeyState,
    Latest,
    Outcome,
    RefreshRequest,
    RefreshWrite,
    RunTiming,
    SnapshotRecord,
    StoredRefresh,
    SuccessWrite,
    Trigger,
    content_hash,
)
from snapshots.store.requests import RequestQueue
from snapshots.store.tables import metadata

__all__ = [
    "Coalescer",
    "DatasetRow",
    "DatasetSummary",
    "FailureWrite",
    "Fencing",
    "FetchedPayload",
    "KeySource",
    "KeyState",
    "Latest",
    "Outcome",
    "RefreshRequest",
    "RefreshWrite",
    "RequestQueue",
    "RunTiming",
    "SnapshotRecord",
    "Store",
    "StoredRefresh",
    "SuccessWrite",
    "Trigger",
    "WriteBatcher",
    "content_hash",
    "create_engine",
    "metadata",
]
