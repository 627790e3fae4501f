"""The refresher the read side uses: this process's own while it is the active worker,
otherwise the active worker's through the request queue. A `serve` replica switches as
leadership moves."""

from __future__ import annotations

from snapshots.coordination.remote import RemoteRefresher
from snapshots.coordination.worker import Worker
from snapshots.handles import RefreshHandle, RefreshListener
from snapshots.refresher import Refresher
from snapshots.store import Trigger
from snapshots.store.records import KeySource


class RoutedRefresher:
    """Local when `worker` is active, remote otherwise (always remote without a worker)."""

    def __init__(self, local: Refresher | None, worker: Worker | None, remote: RemoteRefresher):
        self._local = local
        self._worker = worker
        self._remote = remote

    def _pick(self) -> Refresher | RemoteRefresher:
        if self._local is not None and self._worker is not None and self._worker.active:
            return self._local
        return self._remote

    @property
    def in_flight_count(self) -> int:
        return self._pick().in_flight_count

    def add_listener(self, listener: RefreshListener) -> None:
        """Results of this process's own refreshes (other replicas' arrive as changes)."""
        if self._local is not None:
            self._local.add_listener(listener)

    def known_missing(self, dataset: str, key: str) -> str | None:
        return self._pick().known_missing(dataset, key)

    async def running(self, run_id: int) -> tuple[str, str] | None:
        if self._local is not None and (found := await self._local.running(run_id)):
            return found
        return await self._remote.running(run_id)

    async def start(
        self,
        dataset: str,
        key: str,
        trigger: Trigger,
        source: KeySource = "demand",
        *,
        since: float | None = None,
        seen_run_id: int | None = None,
    ) -> RefreshHandle:
        refresher = self._pick()
        if isinstance(refresher, Refresher):
            return await refresher.start(dataset, key, trigger, source, since=since)
        return await refresher.start(dataset, key, trigger, source, seen_run_id=seen_run_id)

    async def force(
        self, dataset: str, key: str, accept_shrink: bool = False, trigger: Trigger = "demand"
    ) -> RefreshHandle:
        return await self._pick().force(dataset, key, accept_shrink, trigger)
