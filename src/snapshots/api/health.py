"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State

from snapshots.api.common import metrics_of, runtime_of
from snapshots.api.errors import error_response
from snapshots.api.schemas import Health

READY_TIMEOUT_SECONDS = 2.0


@get("/healthz", sync_to_thread=False, tags=["health"], opt={"role": None})
def healthz() -> Health:
    """200 while the process is up (liveness)."""
    return Health(status="ok")


@get("/readyz", tags=["health"], opt={"role": None})
async def readyz(state: State) -> Response[Any]:
    """200 only when the database answers (readiness)."""
    try:
        await asyncio.wait_for(runtime_of(state).store.ping(), READY_TIMEOUT_SECONDS)
    except Exception:
        return error_response(
            503, "not_ready", "the database is not answering", {"Retry-After": "5"}
        )
    return Response(Health(status="ready"))


@get("/metrics", tags=["health"], opt={"role": None}, media_type="text/plain; version=0.0.4")
async def metrics(request: Request[Any, Any, State]) -> Response[bytes]:
    """Prometheus text format."""
    body = await metrics_of(request.app.state).render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


class WorkerStatus(msgspec.Struct, frozen=True):
    """This process's role and, if it runs a worker, whether it is the active one."""

    role: str
    instance: str | None
    active: bool
    leader_since: datetime | None


@get("/api/v1/worker", tags=["health"], opt={"role": None})
async def worker_status(state: State) -> WorkerStatus:
    """Whether this process is the active worker (the one calling upstreams) and since when."""
    runtime = runtime_of(state)
    worker = runtime.worker
    if worker is None:
        return WorkerStatus(runtime.role, None, False, None)
    return WorkerStatus(runtime.role, worker.instance, worker.active, worker.leader_since)
