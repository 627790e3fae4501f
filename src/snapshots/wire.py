"""The JSON shapes of the snapshot API that the server encodes and the client decodes.

One definition keeps the two in step; field order is the wire order (the hot path's
pre-encoded envelope in `api/cache.py` follows it). Fields added later get defaults, so
older clients ignore them and newer clients read older servers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class Freshness(msgspec.Struct, frozen=True):
    """How fresh a snapshot is. On a 304 the client updates `age_seconds`, `verified_at` and
    `stale` from the response headers; the other fields are those of the last full answer."""

    fetched_at: datetime
    verified_at: datetime
    age_seconds: float
    ttl_seconds: float
    stale: bool
    next_refresh_at: datetime | None = None
    last_error: str | None = None


class Snapshot(msgspec.Struct, frozen=True):
    """The latest snapshot of a (dataset, key): the upstream data as JSON and its freshness."""

    dataset: str
    key: str
    data: Any
    freshness: Freshness
    version: int


class Version(msgspec.Struct, frozen=True):
    """One stored version of a key; `data` is set when history was asked with `include_data`."""

    version: int
    content_hash: str
    item_count: int
    fetched_at: datetime
    verified_at: datetime
    data: Any = None


class History(msgspec.Struct, frozen=True):
    """A page of versions, newest first; `next_before_version` continues it (None at the end)."""

    dataset: str
    key: str
    versions: list[Version]
    next: str | None = None

    @property
    def next_before_version(self) -> int | None:
        return self.versions[-1].version if self.next and self.versions else None


class RefreshStarted(msgspec.Struct, frozen=True):
    """A forced refresh that is running (`started`) or was already running (`joined`)."""

    dataset: str
    key: str
    run_id: int
    status: str


class KeyRefresh(msgspec.Struct, frozen=True):
    """One key of a dataset-wide refresh: `started`, `joined`, or `skipped` (with a note)."""

    key: str
    run_id: int | None
    status: str
    note: str | None = None


class Run(msgspec.Struct, frozen=True):
    """A refresh run: `running`, or its outcome (changed, unchanged, failed, rejected)."""

    id: int
    dataset: str
    key: str
    status: str
    trigger: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    upstream_requests: int | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status != "running"


class DatasetRefresh(msgspec.Struct, frozen=True):
    """A dataset-wide forced refresh: what happened to each registered key."""

    dataset: str
    keys: list[KeyRefresh]
