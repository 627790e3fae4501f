"""The Litestar application: routes, error mapping, and the service parts started in its lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from snapshots import __version__
from snapshots.api.datasets import refresh_dataset
from snapshots.api.errors import EXCEPTION_HANDLERS
from snapshots.api.health import healthz, readyz
from snapshots.api.providers import list_providers
from snapshots.api.runs import get_run
from snapshots.api.snapshots import get_snapshot, refresh_snapshot
from snapshots.config import JobsConfig
from snapshots.runtime import running


def create_app(config: JobsConfig, database_url: str, *, schedule: bool = True) -> Litestar:
    """The read API; its lifespan starts store, refresher and (when `schedule`) the scheduler."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with running(config, database_url, schedule=schedule) as runtime:
            app.state.runtime = runtime
            yield

    return Litestar(
        route_handlers=[
            healthz,
            readyz,
            get_snapshot,
            refresh_snapshot,
            refresh_dataset,
            get_run,
            list_providers,
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(title="snapshots", version=__version__, path="/schema"),
        logging_config=None,  # logging is configured once by snapshots.logs
    )
