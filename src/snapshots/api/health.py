"""Liveness and readiness."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State

from snapshots.api.common import metrics_of, runtime_of
from snapshots.api.errors import error_response
from snapshots.api.schemas import Health
from snapshots.deadline import within
from snapshots.logs import get_logger

READY_TIMEOUT_SECONDS = 2.0
log = get_logger(__name__)


@get("/healthz", sync_to_thread=False, tags=["health"], opt={"role": None})
def healthz() -> Health:
    """200 while the process is up (liveness)."""
    return Health(status="ok")


@get("/readyz", tags=["health"], opt={"role": None})
async def readyz(state: State) -> Response[Any]:
    """200 only when the database answers (readiness)."""
    try:
        await within(runtime_of(state).store.ping(), READY_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("ready.failed", error_type=type(exc).__name__, exc_info=exc)
        return error_response(
            503, "not_ready", "the database is not answering", {"Retry-After": "5"}
        )
    return Response(Health(status="ready"))


METRICS_MEDIA_TYPE = "text/plain; version=0.0.4"
"""Prometheus' text format; Litestar adds `; charset=utf-8` to every text/ type itself."""


@get("/metrics", tags=["health"], opt={"role": None}, media_type=METRICS_MEDIA_TYPE)
async def metrics(request: Request[Any, Any, State]) -> Response[bytes]:
    """Prometheus text format (`text/plain; version=0.0.4; charset=utf-8`)."""
    body = await metrics_of(request.app.state).render()
    return Response(body, media_type=METRICS_MEDIA_TYPE)


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
