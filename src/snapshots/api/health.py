"""Liveness and readiness."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency

from snapshots.api.errors import error_response
from snapshots.api.metrics import Metrics
from snapshots.api.schemas import Health
from snapshots.deadline import within
from snapshots.logs import get_logger
from snapshots.roles import Composition
from snapshots.store import Store

READY_TIMEOUT_SECONDS = 2.0
log = get_logger(__name__)


@get("/healthz", sync_to_thread=False, tags=["health"], opt={"role": None})
def healthz() -> Health:
    """200 while the process is up (liveness)."""
    return Health(status="ok")


@get("/readyz", tags=["health"], opt={"role": None})
async def readyz(store: NamedDependency[Store]) -> Response[Any]:
    """200 only when the database answers within 2 s (readiness); answered within 2 s."""
    try:
        await within(store.ping(), READY_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("ready.failed", error_type=type(exc).__name__, exc_info=exc)
        return error_response(
            503, "not_ready", "the database is not answering", {"Retry-After": "5"}
        )
    return Response(Health(status="ready"))


METRICS_MEDIA_TYPE = "text/plain; version=0.0.4"
"""Prometheus' text format; Litestar adds `; charset=utf-8` to every text/ type itself."""


@get("/metrics", tags=["health"], opt={"role": None}, media_type=METRICS_MEDIA_TYPE)
async def metrics(metrics: NamedDependency[Metrics]) -> Response[bytes]:
    """Prometheus text format (`text/plain; version=0.0.4; charset=utf-8`)."""
    body = await metrics.render()
    return Response(body, media_type=METRICS_MEDIA_TYPE)


class WorkerStatus(msgspec.Struct, frozen=True):
    """This process's role and, if it runs a worker, whether it is the active one."""

    role: str
    instance: str | None
    active: bool
    leader_since: datetime | None


@get("/api/v1/worker", tags=["health"], opt={"role": None})
async def worker_status(composition: NamedDependency[Composition]) -> WorkerStatus:
    """Whether this process is the active worker (the one calling upstreams) and since when."""
    side = composition.worker
    if side is None:
        return WorkerStatus(composition.role, None, False, None)
    worker = side.worker
    return WorkerStatus(composition.role, worker.instance, worker.active, worker.leader_since)
