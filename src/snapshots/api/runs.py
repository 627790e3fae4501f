"""A refresh run by id: still running, or what it ended with."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.params import Parameter

from snapshots.api.schemas import ERROR_RESPONSES
from snapshots.errors import UnknownRun
from snapshots.handles import RefreshService
from snapshots.store import Store
from snapshots_client.wire import Run


@get("/api/v1/runs/{run_id:int}", tags=["runs"], responses=ERROR_RESPONSES, opt={"role": "reader"})
async def get_run(
    refresher: NamedDependency[RefreshService],
    store: NamedDependency[Store],
    run_id: Annotated[int, Parameter(ge=1, le=2**63 - 1, description="a run id from a refresh")],
) -> Run:
    """`running` while the refresh is in flight, then its outcome, timing and error."""
    running = await refresher.running(run_id)
    if running is not None:
        return Run(id=run_id, dataset=running[0], key=running[1], status="running")
    row = await store.run(run_id)
    if row is None:
        raise UnknownRun(f"no refresh run {run_id} (runs are kept until retention prunes them)")
    return Run(
        id=run_id,
        dataset=row["dataset"],
        key=row["key"],
        status=row["outcome"],
        trigger=row["trigger"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        upstream_requests=row["upstream_requests"],
        error=row["error"],
    )
