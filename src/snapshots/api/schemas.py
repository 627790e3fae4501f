"""Response bodies of the read API, as msgspec Structs (encoded once, documented in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class Freshness(msgspec.Struct, frozen=True):
    """How fresh a snapshot is: when it was first seen and last confirmed, and whether it is stale."""

    fetched_at: datetime
    verified_at: datetime
    age_seconds: float
    ttl_seconds: float
    stale: bool
    next_refresh_at: datetime | None
    last_error: str | None


class SnapshotEnvelope(msgspec.Struct, frozen=True):
    """The latest snapshot of a (dataset, key) with its freshness; `version` counts from 1 per key."""

    dataset: str
    key: str
    data: Any
    freshness: Freshness
    version: int


class ErrorDetail(msgspec.Struct, frozen=True):
    code: str
    message: str


class ErrorBody(msgspec.Struct, frozen=True):
    """Every error response: a stable code and a message that says what to change."""

    error: ErrorDetail


class Health(msgspec.Struct, frozen=True):
    status: str


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


class ProviderBody(msgspec.Struct, frozen=True):
    """A provider: where it points, whether it can fetch, its budget and upstream answers."""

    provider: str
    base_url: str
    enabled: bool
    disabled_reason: str | None
    datasets: list[str]
    budget: BudgetBody
    upstream_requests: dict[str, int]
