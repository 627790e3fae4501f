"""Dataset routes: every dataset with how its keys stand, one dataset's keys, refreshing all keys."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from snapshots.api.schemas import ERROR_RESPONSES, DatasetBody, DatasetDetail, KeyBody
from snapshots.api.snapshots import AcceptShrink
from snapshots.clock import utcnow
from snapshots.errors import RefreshTooSoon
from snapshots.handles import RefreshService
from snapshots.published import ProviderView, PublishedBudgets
from snapshots.registry import RegisteredDataset, Registry
from snapshots.store import DatasetSummary, Latest, Store
from snapshots_client.wire import DatasetRefresh, KeyRefresh

FORCE_CHUNK = 100
"""Keys of a dataset refresh started at once (their checks and run ids share queries)."""


def dataset_body(
    dataset: RegisteredDataset,
    summary: DatasetSummary | None,
    views: Mapping[str, ProviderView],
) -> DatasetBody:
    """A dataset with its key counts and its provider's budget as last published."""
    summary = summary or DatasetSummary(0, 0, 0, 0)
    view = views.get(dataset.provider.name)
    return DatasetBody(
        dataset=dataset.name,
        provider=dataset.provider.name,
        description=dataset.definition.description,
        ttl_seconds=dataset.ttl_seconds,
        enabled=dataset.enabled,
        disabled_reason=dataset.provider.disabled_reason,
        keys=summary.keys,
        fresh=summary.fresh,
        stale=summary.stale,
        failing=summary.failing,
        budget=view.state.budget if view is not None else None,
    )


def key_body(latest: Latest, ttl_seconds: float) -> KeyBody:
    snapshot, state = latest.snapshot, latest.state
    age = (utcnow() - snapshot.verified_at).total_seconds() if snapshot else None
    return KeyBody(
        key=state.key,
        source=state.source,
        version=snapshot.version if snapshot else None,
        item_count=snapshot.item_count if snapshot else None,
        fetched_at=snapshot.fetched_at if snapshot else None,
        verified_at=snapshot.verified_at if snapshot else None,
        age_seconds=round(age, 3) if age is not None else None,
        stale=age is None or age > ttl_seconds,
        next_refresh_at=state.next_refresh_at,
        last_refresh_at=state.last_refresh_at,
        last_outcome=state.last_outcome,
        last_error=state.last_error,
    )


async def _detail(
    registry: Registry, store: Store, budgets: PublishedBudgets, name: str
) -> DatasetDetail:
    dataset = registry.dataset(name)
    summary = (await store.dataset_summaries()).get(name)
    keys = [key_body(latest, dataset.ttl_seconds) for latest in await store.keys_of(name)]
    return DatasetDetail(dataset_body(dataset, summary, await budgets.views()), keys)


@get("/api/v1/datasets", tags=["datasets"], responses=ERROR_RESPONSES, opt={"role": "reader"})
async def list_datasets(
    registry: NamedDependency[Registry],
    store: NamedDependency[Store],
    budgets: NamedDependency[PublishedBudgets],
) -> list[DatasetBody]:
    """Every dataset: provider, TTL, enabled (or why not), key counts by freshness, budget."""
    summaries = await store.dataset_summaries()
    views = await budgets.views()
    return [dataset_body(d, summaries.get(n), views) for n, d in sorted(registry.datasets.items())]


@get(
    "/api/v1/datasets/{dataset:str}",
    tags=["datasets"],
    responses=ERROR_RESPONSES,
    opt={"role": "reader"},
)
async def get_dataset(
    registry: NamedDependency[Registry],
    store: NamedDependency[Store],
    budgets: NamedDependency[PublishedBudgets],
    dataset: FromPath[str],
) -> DatasetDetail:
    """One dataset and, per key: versions, fetched/verified times, age, staleness, next refresh,
    last outcome and error."""
    return await _detail(registry, store, budgets, dataset)


@get(
    "/api/v1/datasets/{dataset:str}/keys",
    tags=["datasets"],
    responses=ERROR_RESPONSES,
    opt={"role": "reader"},
)
async def list_keys(
    registry: NamedDependency[Registry],
    store: NamedDependency[Store],
    budgets: NamedDependency[PublishedBudgets],
    dataset: FromPath[str],
) -> list[KeyBody]:
    """The registered keys of a dataset with their freshness and last outcome."""
    return (await _detail(registry, store, budgets, dataset)).keys


@post(
    "/api/v1/datasets/{dataset:str}/refresh",
    tags=["datasets"],
    status_code=202,
    responses=ERROR_RESPONSES,
    opt={"role": "operator"},
)
async def refresh_dataset(
    registry: NamedDependency[Registry],
    store: NamedDependency[Store],
    refresher: NamedDependency[RefreshService],
    dataset: FromPath[str],
    accept_shrink: AcceptShrink = False,
) -> DatasetRefresh:
    """Start a refresh of every registered key; keys inside their minimum interval are skipped."""
    registry.enabled_dataset(dataset)
    states = await store.key_states(dataset)

    async def force(key: str) -> KeyRefresh:
        try:
            started = await refresher.force(dataset, key, accept_shrink)
        except RefreshTooSoon as exc:
            return KeyRefresh(key, None, "skipped", exc.message)
        return KeyRefresh(key, started.run_id, "joined" if started.joined else "started", None)

    # Started a chunk at a time, so their checks and run ids share round trips.
    keys: list[KeyRefresh] = []
    for at in range(0, len(states), FORCE_CHUNK):
        keys += await asyncio.gather(*(force(s.key) for s in states[at : at + FORCE_CHUNK]))
    return DatasetRefresh(dataset, keys)
