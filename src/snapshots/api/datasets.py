"""Refreshing every key of a dataset at interactive priority."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.datastructures import State
from litestar.params import FromPath

from snapshots.api.common import runtime_of
from snapshots.api.schemas import DatasetRefresh, KeyRefresh
from snapshots.api.snapshots import AcceptShrink
from snapshots.errors import RefreshTooSoon


@post("/api/v1/datasets/{dataset:str}/refresh", tags=["datasets"], status_code=202)
async def refresh_dataset(
    request: Request[Any, Any, State], dataset: FromPath[str], accept_shrink: AcceptShrink = False
) -> DatasetRefresh:
    """Start a refresh of every registered key; keys inside their minimum interval are skipped."""
    runtime = runtime_of(request.app.state)
    runtime.registry.enabled_dataset(dataset)
    keys = []
    for state in await runtime.store.key_states(dataset):
        try:
            started = await runtime.refresher.force(dataset, state.key, accept_shrink)
        except RefreshTooSoon as exc:
            keys.append(KeyRefresh(state.key, None, "skipped", exc.message))
            continue
        keys.append(
            KeyRefresh(state.key, started.run_id, "joined" if started.joined else "started", None)
        )
    return DatasetRefresh(dataset, keys)
