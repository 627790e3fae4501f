"""Route handlers: health, readiness, and the latest snapshot of a (dataset, key)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from snapshots.api.errors import error_response
from snapshots.api.schemas import BudgetBody, Freshness, Health, ProviderBody, SnapshotEnvelope
from snapshots.clock import utcnow
from snapshots.errors import Unavailable, UpstreamNotFound
from snapshots.runtime import Runtime
from snapshots.store import Latest

READY_TIMEOUT_SECONDS = 2.0


def _runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


@get("/healthz", sync_to_thread=False, tags=["health"])
def healthz() -> Health:
    """200 while the process is up (liveness)."""
    return Health(status="ok")


@get("/readyz", tags=["health"])
async def readyz(state: State) -> Response[Any]:
    """200 only when the database answers (readiness)."""
    try:
        await asyncio.wait_for(_runtime(state).store.ping(), READY_TIMEOUT_SECONDS)
    except Exception:
        return error_response(
            503, "not_ready", "the database is not answering", {"Retry-After": "5"}
        )
    return Response(Health(status="ready"))


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


async def read_latest(runtime: Runtime, dataset: str, key: str) -> Latest:
    """The latest snapshot; on a cold miss, register the key and fetch it within the read wait."""
    registered = runtime.registry.dataset(dataset)
    registered.check_key(key)
    latest = await runtime.store.latest(dataset, key)
    if latest is not None and latest.snapshot is not None:
        return latest
    missing = runtime.refresher.known_missing(dataset, key)
    if missing is not None:
        raise UpstreamNotFound(f"{dataset} {key}: {missing} (remembered for the negative TTL)")
    result = await runtime.refresher.refresh_within(
        dataset, key, "miss", runtime.config.read_wait_seconds
    )
    if result.not_found:
        raise UpstreamNotFound(f"{dataset} {key}: {result.error}")
    latest = await runtime.store.latest(dataset, key)
    if latest is None or latest.snapshot is None:
        raise Unavailable(
            f"no snapshot of {dataset} {key} yet; the last refresh failed: {result.error}",
            retry_after=30,
        )
    return latest


@get("/api/v1/snapshots/{dataset:str}/{key:path}", tags=["snapshots"])
async def get_snapshot(
    request: Request[Any, Any, State], dataset: FromPath[str], key: FromPath[Path]
) -> SnapshotEnvelope:
    """The latest snapshot of `dataset` for `key`, with freshness; keys may contain `/`."""
    runtime = _runtime(request.app.state)
    latest = await read_latest(runtime, dataset, str(key).lstrip("/"))
    return envelope(runtime, latest)


@get("/api/v1/providers", tags=["providers"], sync_to_thread=False)
def list_providers(state: State) -> list[ProviderBody]:
    """Every provider with its budget state (tokens left, waiters, pause) and upstream answers."""
    registry = _runtime(state).registry
    bodies = []
    for name, provider in sorted(registry.providers.items()):
        budget = provider.budget.state()
        bodies.append(
            ProviderBody(
                provider=name,
                base_url=provider.settings.base_url or "",
                enabled=provider.disabled_reason is None,
                disabled_reason=provider.disabled_reason,
                datasets=sorted(
                    d.name for d in registry.datasets.values() if d.provider is provider
                ),
                budget=BudgetBody(
                    limit=budget.limit,
                    period_seconds=budget.period_seconds,
                    used_in_period=budget.used_in_period,
                    tokens_left=budget.tokens_left,
                    waiting=dict(budget.waiting),
                    paused_for_seconds=budget.paused_for_seconds,
                    pause_reason=budget.pause_reason,
                    granted=budget.granted,
                    wait_seconds=dict(budget.wait_seconds),
                ),
                upstream_requests=provider.gate.answers(),
            )
        )
    return bodies
