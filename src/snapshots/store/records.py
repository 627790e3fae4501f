"""Values the store hands out and takes in: snapshots, key states, fetched payloads, run timings."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from snapshots.shrink import ShrinkGuard

Trigger = Literal["schedule", "demand", "miss"]
Outcome = Literal["changed", "unchanged", "failed", "rejected"]
KeySource = Literal["config", "demand"]


def content_hash(payload: Any) -> str:
    """SHA-256 of the payload's canonical JSON (sorted keys), so equal content hashes equally."""
    return hashlib.sha256(msgspec.json.encode(payload, order="sorted")).hexdigest()


@dataclass(frozen=True)
class SnapshotRecord:
    """One stored version of a (dataset, key)."""

    id: int
    dataset: str
    key: str
    version: int
    content_hash: str
    payload: Any
    item_count: int
    fetched_at: datetime
    verified_at: datetime


@dataclass(frozen=True)
class KeyState:
    """Refresh state of one registered (dataset, key)."""

    dataset: str
    key: str
    source: KeySource
    next_refresh_at: datetime | None
    last_refresh_at: datetime | None
    last_outcome: Outcome | None
    last_error: str | None


@dataclass(frozen=True)
class Latest:
    """What a reader gets: the key's state and its latest good snapshot (None before the first)."""

    state: KeyState
    snapshot: SnapshotRecord | None
    refreshed_seconds_ago: float | None = None  # database time since last_refresh_at


@dataclass(frozen=True)
class FetchedPayload:
    """A successful fetch, ready to store."""

    payload: Any
    content_hash: str
    item_count: int

    @classmethod
    def of(cls, payload: Any) -> FetchedPayload:
        count = len(payload) if isinstance(payload, list) else 1
        return cls(payload=payload, content_hash=content_hash(payload), item_count=count)


@dataclass(frozen=True)
class RunTiming:
    """When a refresh ran and how many upstream requests it made."""

    trigger: Trigger
    started_at: datetime
    finished_at: datetime
    upstream_requests: int
    run_id: int  # allocated when the refresh started (allocate_run_id), so callers could be told it


@dataclass(frozen=True)
class Fencing:
    """Who writes a refresh result: the leader epoch it holds (the write is refused when a
    newer leader took over; None: a lone process, no election) and its instance name."""

    epoch: int | None = None
    instance: str | None = None


@dataclass(frozen=True)
class StoredRefresh:
    """The result of recording a refresh: its run id, outcome and the snapshot now latest."""

    run_id: int
    outcome: Outcome
    snapshot_id: int | None
    note: str | None = None  # why a shrink was rejected or accepted
    registered: bool = True  # False: the key has no row (a failed first fetch registers nothing)


@dataclass(frozen=True)
class SuccessWrite:
    """A successful fetch waiting to be stored (the arguments of `Store.record_success`)."""

    dataset: str
    key: str
    fetched: FetchedPayload
    timing: RunTiming
    next_refresh_at: datetime
    source: KeySource
    guard: ShrinkGuard | None = None
    accept_shrink: bool = False


@dataclass(frozen=True)
class FailureWrite:
    """A failed fetch waiting to be stored (the arguments of `Store.record_failure`)."""

    dataset: str
    key: str
    error: str
    timing: RunTiming
    next_refresh_at: datetime | None


RefreshWrite = SuccessWrite | FailureWrite


def snapshot_from_row(row: Any, prefix: str, payload: Any = ...) -> SnapshotRecord:
    """A SnapshotRecord from a result row whose snapshot columns carry `prefix`.

    Pass `payload` when the query left the payload column out (listings, history metadata).
    """
    mapping = row._mapping
    values = {f: mapping[prefix + f] for f in SNAPSHOT_FIELDS if f != "payload" or payload is ...}
    if payload is not ...:
        values["payload"] = payload
    return SnapshotRecord(**values)


def key_state_from_row(row: Any) -> KeyState:
    mapping = row._mapping
    return KeyState(**{f: mapping[f] for f in KEY_STATE_FIELDS})


SNAPSHOT_FIELDS = tuple(f.name for f in dataclasses.fields(SnapshotRecord))
KEY_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(KeyState))


@dataclass(frozen=True)
class DatasetRow:
    """What the datasets table records of a registered dataset."""

    name: str
    provider: str
    ttl_seconds: float
    enabled: bool
    disabled_reason: str | None
    kind: str | None = None
    definition: str | None = None


@dataclass(frozen=True)
class DatasetSummary:
    """How a dataset's registered keys stand."""

    keys: int
    fresh: int
    stale: int  # older than the TTL, or never fetched
    failing: int  # last refresh failed or was rejected


@dataclass(frozen=True)
class RefreshRequest:
    """A refresh asked of the active worker by an API replica, and how far it has got."""

    id: int
    dataset: str
    key: str
    forced: bool
    accept_shrink: bool
    seen_run_id: int | None
    requested_at: datetime
    status: str  # pending | claimed | started | refused | finished | expired
    run_id: int | None = None
    joined: bool | None = None
    outcome: str | None = None
    error: str | None = None
    error_code: str | None = None
    retry_after: int | None = None
    not_found: bool | None = None
