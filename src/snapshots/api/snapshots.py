"""Reading the latest snapshot (with cold miss and max_age) and forcing a refresh of one key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, Parameter

from snapshots.api.common import runtime_of
from snapshots.api.schemas import Freshness, RefreshAccepted, SnapshotEnvelope
from snapshots.clock import utcnow
from snapshots.errors import (
    KeyLimitReached,
    RefreshTooSoon,
    Unavailable,
    UpstreamError,
    UpstreamNotFound,
)
from snapshots.refresher import wait_bounded
from snapshots.runtime import Runtime
from snapshots.store import Latest

MaxAge = Annotated[
    float | None,
    Parameter(
        ge=0,
        description="serve only a snapshot younger than this many seconds; else refresh and wait",
    ),
]
Wait = Annotated[
    float | None,
    Parameter(
        ge=0, le=300, description="wait this many seconds for the refresh and return the snapshot"
    ),
]
AcceptShrink = Annotated[
    bool, Parameter(description="store the result even if the shrink guard would hold it back")
]


def envelope(runtime: Runtime, latest: Latest) -> SnapshotEnvelope:
    snapshot = latest.snapshot
    assert snapshot is not None
    ttl = runtime.registry.dataset(snapshot.dataset).ttl_seconds
    age = max(0.0, (utcnow() - snapshot.verified_at).total_seconds())
    return SnapshotEnvelope(
        dataset=snapshot.dataset,
        key=snapshot.key,
        data=snapshot.payload,
        freshness=Freshness(
            fetched_at=snapshot.fetched_at,
            verified_at=snapshot.verified_at,
            age_seconds=round(age, 3),
            ttl_seconds=ttl,
            stale=age > ttl,
            next_refresh_at=latest.state.next_refresh_at,
            last_error=latest.state.last_error,
        ),
        version=snapshot.version,
    )


async def _cold_miss(
    runtime: Runtime, dataset: str, key: str, registered: bool, since: float
) -> Latest:
    """Fetch a key that had no snapshot at `since`, registering it; bounded by the read wait."""
    missing = runtime.refresher.known_missing(dataset, key)
    if missing is not None:
        raise UpstreamNotFound(f"{dataset} {key}: {missing} (remembered for the negative TTL)")
    settings = runtime.registry.dataset(dataset).settings
    if not registered and await runtime.store.demand_key_count(dataset) >= settings.max_keys:
        raise KeyLimitReached(
            f"{dataset} already has {settings.max_keys} keys registered by reads (max_keys); "
            "add this key to `keys` in jobs.toml or raise max_keys"
        )
    result = await runtime.refresher.refresh_within(
        dataset, key, "miss", runtime.config.read_wait_seconds, since=since
    )
    if result.not_found:
        raise UpstreamNotFound(f"{dataset} {key}: {result.error}")
    latest = await runtime.store.latest(dataset, key)
    if latest is None or latest.snapshot is None:
        raise Unavailable(
            f"no snapshot of {dataset} {key} yet; the last refresh failed: {result.error or result.note}",
            retry_after=30,
        )
    return latest


async def _younger_than(runtime: Runtime, latest: Latest, max_age: float) -> Latest:
    """`latest` if younger than `max_age`, else a refresh waited for (bounded by the read wait)."""
    assert latest.snapshot is not None
    age = (utcnow() - latest.snapshot.verified_at).total_seconds()
    if age <= max_age:
        return latest
    dataset, key = latest.snapshot.dataset, latest.snapshot.key
    try:
        started = await runtime.refresher.force(dataset, key, trigger="miss")
    except RefreshTooSoon:
        return latest  # refreshed moments ago; its result (or error) is what there is
    result = await wait_bounded(started, runtime.config.read_wait_seconds, f"{dataset} {key}")
    fresh = await runtime.store.latest(dataset, key)
    if result.outcome == "failed" or fresh is None or fresh.snapshot is None:
        raise Unavailable(
            f"{dataset} {key} is {age:.0f}s old and could not be refreshed: {result.error}",
            retry_after=30,
        )
    return fresh


async def read_latest(
    runtime: Runtime, dataset: str, key: str, max_age: float | None = None
) -> Latest:
    """The latest snapshot; a cold miss registers and fetches the key within the read wait."""
    registered = runtime.registry.dataset(dataset)
    registered.check_key(key)
    looked_at = time.monotonic()
    latest = await runtime.store.latest(dataset, key)
    if latest is None or latest.snapshot is None:
        latest = await _cold_miss(runtime, dataset, key, latest is not None, looked_at)
    elif max_age is not None:
        latest = await _younger_than(runtime, latest, max_age)
    runtime.reads.touch(dataset, key)
    return latest


def _key(path: Path) -> str:
    return str(path).lstrip("/")


@get("/api/v1/snapshots/{dataset:str}/{key:path}", tags=["snapshots"])
async def get_snapshot(
    request: Request[Any, Any, State],
    dataset: FromPath[str],
    key: FromPath[Path],
    max_age: MaxAge = None,
) -> SnapshotEnvelope:
    """The latest snapshot of `dataset` for `key`, with freshness; keys may contain `/`."""
    runtime = runtime_of(request.app.state)
    return envelope(runtime, await read_latest(runtime, dataset, _key(key), max_age))


@post("/api/v1/snapshots/{dataset:str}/{key:path}", tags=["snapshots"], status_code=202)
async def refresh_snapshot(
    request: Request[Any, Any, State],
    dataset: FromPath[str],
    key: FromPath[Path],
    wait: Wait = None,
    accept_shrink: AcceptShrink = False,
) -> Response[Any]:
    """`POST .../{key}/refresh`: refresh now (202 with the run id), or with `wait` the new snapshot.

    Joins a refresh already running; inside the key's minimum interval answers 429.
    """
    runtime = runtime_of(request.app.state)
    path = _key(key)
    if not path.endswith("/refresh"):
        return Response(
            {
                "error": {
                    "code": "not_found",
                    "message": "POST to /api/v1/snapshots/{dataset}/{key}/refresh",
                }
            },
            status_code=404,
        )
    key_text = path.removesuffix("/refresh")
    started = await runtime.refresher.force(dataset, key_text, accept_shrink)
    if wait is None:
        body = RefreshAccepted(
            dataset, key_text, started.run_id, "joined" if started.joined else "started"
        )
        return Response(
            body, status_code=202, headers={"Location": f"/api/v1/runs/{started.run_id}"}
        )
    result = await wait_bounded(started, wait, f"{dataset} {key_text}")
    if result.outcome == "failed":
        raise UpstreamError(
            f"refresh of {dataset} {key_text} failed: {result.error}; the last good snapshot is kept"
        )
    latest = await runtime.store.latest(dataset, key_text)
    if latest is None or latest.snapshot is None:
        raise Unavailable(f"no snapshot of {dataset} {key_text}: {result.note}", retry_after=30)
    headers = {"X-Refresh-Run": str(result.run_id), "X-Refresh-Outcome": result.outcome}
    return Response(envelope(runtime, latest), status_code=200, headers=headers)
