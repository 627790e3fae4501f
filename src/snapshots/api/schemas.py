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
