"""Response bodies of the read API, as msgspec Structs (encoded once, documented in OpenAPI).

The snapshot, history, refresh and run shapes the client also decodes are in `snapshots.wire`.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar.openapi.datastructures import ResponseSpec

from snapshots.wire import Freshness


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


class ProviderState(msgspec.Struct, frozen=True):
    """What the active worker publishes per provider (`provider_states.state`)."""

    budget: BudgetBody
    plan: PlanBody | None
    upstream_requests: dict[str, int]


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


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description)


ERROR_RESPONSES: dict[int, ResponseSpec] = {
    400: _error("a malformed key or parameter; the message shows the expected format"),
    401: _error("no bearer token, or an unknown one"),
    403: _error("the token's role is too low"),
    404: _error("unknown dataset, run or route, or a key the upstream says does not exist"),
    409: _error(
        "the dataset is disabled (the message names the missing setting), or max_keys is reached"
    ),
    429: _error("a refresh asked again inside the key's minimum interval (see Retry-After)"),
    502: _error("a waited-for refresh failed; the last good snapshot is kept"),
    503: _error(
        "no snapshot yet and none obtainable within the wait, or the database is down (see Retry-After)"
    ),
}
"""Every error the API answers, documented once so the OpenAPI document matches the bodies."""
