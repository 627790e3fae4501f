"""Postgres storage: tables, the values read and written, and every query."""

from snapshots.store.queries import Store, create_engine
from snapshots.store.records import (
    DatasetRow,
    DatasetSummary,
    Fencing,
    FetchedPayload,
    KeySource,
    KeyState,
    Latest,
    Outcome,
    RefreshRequest,
    RunTiming,
    SnapshotRecord,
    StoredRefresh,
    Trigger,
    content_hash,
)
from snapshots.store.requests import RequestQueue
from snapshots.store.tables import metadata

__all__ = [
    "DatasetRow",
    "DatasetSummary",
    "Fencing",
    "FetchedPayload",
    "KeySource",
    "KeyState",
    "Latest",
    "Outcome",
    "RefreshRequest",
    "RequestQueue",
    "RunTiming",
    "SnapshotRecord",
    "Store",
    "StoredRefresh",
    "Trigger",
    "content_hash",
    "create_engine",
    "metadata",
]
