"""Each provider instance's routes in the shapes integrations already call, built from what its
kind declares (`ProviderKind.routes`), below `/api/v1/<instance>`; and each kind's own routes
in consumers' shapes (`ProviderKind.api_routes`), served once per kind.

A bare route answers with the dataset's data as the body; freshness travels in the headers
(ETag, Last-Modified, Age, Cache-Control, X-Snapshot-Stale), so an integration moving off a
direct API call changes only its base URL and token.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp

from snapshots.api.mirror import mirror_get
from snapshots.api.reader import SnapshotReader
from snapshots.api.schemas import ERROR_RESPONSES
from snapshots.providers.kind import BareRoute
from snapshots.registry import Registry


def _bare_handler(dataset: str, route: BareRoute) -> Any:
    async def bare(
        request: Request[Any, Any, State], reader: NamedDependency[SnapshotReader]
    ) -> ASGIApp:
        key = route.key_from(request.path_params)
        entry, how = await reader.entry(dataset, key, None)
        return reader.respond(request, entry, how, body="data")

    return bare


def routes_for(registry: Registry) -> list[HTTPRouteHandler]:
    """The bare routes of every dataset configured in the registry (an unconfigured one would
    answer only 404, so the OpenAPI document does not offer it)."""
    handlers: list[HTTPRouteHandler] = []
    for instance, provider in sorted(registry.providers.items()):
        for route in provider.kind.routes:
            dataset = f"{instance}.{route.dataset}"
            if dataset not in registry.datasets:
                continue
            handler = get(
                f"/api/v1/{instance}{route.path}",
                tags=["integrations"],
                responses=ERROR_RESPONSES,
                opt={"role": "reader"},
                name=f"{instance}.{route.dataset}.bare",
                operation_id=route.operation_id(instance),
                summary=route.summary,
                description=f"{route.summary} (`{dataset}`, key `{route.key}`)",
            )(_bare_handler(dataset, route))
            handlers.append(handler)
    kinds = {p.kind.name: p.kind for p in registry.providers.values()}
    for _, kind in sorted(kinds.items()):
        if kind.api_routes is not None:
            handlers.extend(kind.api_routes(registry))
    if any(kind.mirror is not None for kind in kinds.values()):
        handlers.append(mirror_get)
    return handlers
