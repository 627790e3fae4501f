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


class ErrorDetail(msgspec.Struct, frozen=True, omit_defaults=True):
    """`last_error` and `freshness` come with 503 `unavailable`: why there is no usable snapshot
    and, when an older one exists (refused by `max_age`), how old it is."""

    code: str
    message: str
    last_error: str | None = None
    freshness: Freshness | None = None
    latest_version: int | None = None  # 429 refresh_too_soon: the version a reader gets now


class ErrorBody(msgspec.Struct, frozen=True):
    """Every error response: a stable code and a message that says what to change."""

    error: ErrorDetail


# --- what operators read: datasets, keys, providers and budgets ---


class BudgetBody(msgspec.Struct, frozen=True):
    """A provider's budget now: limit, use in the current period, waiters, pause."""

    limit: int | None
    period_seconds: float | None
    used_in_period: int
    tokens_left: int | None
    waiting: dict[str, int]
    paused_for_seconds: float
    pause_reason: str | None
    granted: int
    wait_seconds: dict[str, float]


class DemandBody(msgspec.Struct, frozen=True):
    """What one dataset asks of its provider's budget."""

    dataset: str
    keys: int
    requests_per_refresh: float
    requests_per_hour: float


class PlanBody(msgspec.Struct, frozen=True):
    """Registered demand against the budget; `stretch` > 1 means intervals are lengthened."""

    demand_per_hour: float
    budget_per_hour: float
    utilisation: float
    stretch: float
    shortfall_per_hour: float
    datasets: list[DemandBody]


class PublishedBy(msgspec.Struct, frozen=True):
    """Where a budget figure comes from: the active worker that published it, and when."""

    instance: str
    at: datetime
    age_seconds: float


class ProviderBody(msgspec.Struct, frozen=True):
    """A provider: where it points, whether it can fetch, and, as the active worker last
    published them, its budget, plan and upstream answers (None before any publication)."""

    provider: str
    base_url: str
    enabled: bool
    disabled_reason: str | None
    datasets: list[str]
    budget: BudgetBody | None
    plan: PlanBody | None
    upstream_requests: dict[str, int]
    published: PublishedBy | None


class DatasetBody(msgspec.Struct, frozen=True):
    """A dataset: its provider, TTL, whether it can fetch, how its keys stand, its budget."""

    dataset: str
    provider: str
    description: str
    ttl_seconds: float
    enabled: bool
    disabled_reason: str | None
    keys: int
    fresh: int
    stale: int
    failing: int
    budget: BudgetBody | None  # its provider's, as the active worker last published it


class KeyBody(msgspec.Struct, frozen=True):
    """A registered key: its latest version and how fresh it is."""

    key: str
    source: str
    version: int | None
    item_count: int | None
    fetched_at: datetime | None
    verified_at: datetime | None
    age_seconds: float | None
    stale: bool
    next_refresh_at: datetime | None
    last_refresh_at: datetime | None
    last_outcome: str | None
    last_error: str | None


class DatasetDetail(msgspec.Struct, frozen=True):
    dataset: DatasetBody
    keys: list[KeyBody]
