"""The Litestar application: routes, auth guard, error mapping, and the parts started in its lifespan."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from snapshots.api.access_log import AccessLog
from snapshots.api.auth import TokenStore, require_role
from snapshots.api.datasets import get_dataset, list_datasets, list_keys, refresh_dataset
from snapshots.api.docs import assets_router, openapi_config
from snapshots.api.errors import EXCEPTION_HANDLERS
from snapshots.api.fast_path import FastPath, bare_targets, mirrors
from snapshots.api.head import head_as_get
from snapshots.api.health import healthz, metrics, readyz, worker_status
from snapshots.api.limits import request_limits
from snapshots.api.middleware import request_log
from snapshots.api.provider_routes import routes_for
from snapshots.api.providers import list_providers
from snapshots.api.runs import get_run
from snapshots.api.snapshots import (
    get_history,
    get_latest,
    get_snapshot,
    refresh_key,
    refresh_snapshot,
)
from snapshots.api.status_page import status_page
from snapshots.config import JobsConfig
from snapshots.instance import Role
from snapshots.roles import Composition, compose

ROUTES = [
    healthz,
    readyz,
    metrics,
    get_snapshot,
    get_latest,
    get_history,
    refresh_snapshot,
    refresh_key,
    list_datasets,
    get_dataset,
    list_keys,
    refresh_dataset,
    get_run,
    list_providers,
    status_page,
]


WORKER_ROUTES = [healthz, readyz, metrics, list_providers, worker_status]
"""A worker serves no snapshots: health, metrics and its budgets (it is where upstream calls are)."""


def create_app(
    config: JobsConfig, database_url: str, *, role: Role = "serve", freeze_heap: bool = False
) -> Litestar:
    """The HTTP side of a process of `role`, composed by `snapshots.roles`. `freeze_heap` is for
    the process's one app (the CLI's): see `build_app`."""
    return build_app(compose(config, database_url, role), freeze_heap=freeze_heap)


def _value(value: object) -> Provide:
    return Provide(lambda: value, sync_to_thread=False, use_cache=True)


class GatewayApp(Litestar):
    """The service's Litestar app, with its fast path (when on) asked first: a hit is answered
    before Litestar's own entry point and routing; everything else goes to them unchanged."""

    fast_path: FastPath | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        fast = self.fast_path
        if fast is not None and await fast.handled(scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def build_app(composition: Composition, *, freeze_heap: bool = False) -> Litestar:
    """An app serving what `composition` holds; its lifespan starts and stops those parts.

    Handlers receive the parts by dependency injection (`reader`, `store`, `registry`...).
    With `freeze_heap`, everything alive once the parts have started (modules, the app, the
    clients: most of the process's objects) is moved out of the cyclic garbage collector's
    passes (`gc.freeze`), so a full collection during a burst of reads no longer walks the
    whole heap (tens of milliseconds each, seen as the read path's p99)."""
    config = composition.config
    tokens = TokenStore.of(config)
    access_log = AccessLog() if config.api.access_log else None

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        async with composition.running():
            if freeze_heap:
                gc.collect()
                gc.freeze()
            yield
        if access_log is not None:
            access_log.flush()  # the last turn's lines

    dependencies = {
        "composition": _value(composition),
        "registry": _value(composition.registry),
        "store": _value(composition.store),
        "budgets": _value(composition.budgets),
        "metrics": _value(composition.metrics),
    }
    routes = WORKER_ROUTES
    if composition.read is not None:
        dependencies["reader"] = _value(composition.read.reader)
        dependencies["refresher"] = _value(composition.read.refresher)
        routes = [*ROUTES, worker_status, *routes_for(composition.registry)]
    app = GatewayApp(
        route_handlers=[*routes, assets_router()],
        dependencies=dependencies,
        lifespan=[lifespan],
        guards=[require_role],
        middleware=[partial(request_log, access_log=access_log), request_limits],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(),
        state=State({"tokens": tokens}),
        logging_config=None,  # logging is configured once by snapshots.logs
    )
    app.asgi_handler = head_as_get(app.asgi_handler)
    if composition.read is not None and config.api.fast_path:
        bare = bare_targets(composition.registry)
        fast = FastPath(
            composition.read.reader, tokens, access_log, bare, mirrors(composition.registry)
        )
        app.fast_path = fast
    return app
