"""The refresh contract between the read side and a refresher, in one process or across two:
what a refresh ended with, a handle on one that is running, and remembered "not found"s."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from snapshots.errors import Unavailable
from snapshots.store import KeySource, Outcome, Trigger

STEPPED_DOWN = "the worker stepped down before the refresh was stored; retry shortly"


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did: its run, outcome, the latest snapshot, and the error if it failed.

    `interrupted`: it never finished (the worker stepped down or shut down): nothing stored,
    and asking again shortly will reach the active worker.
    """

    run_id: int
    outcome: Outcome
    snapshot_id: int | None
    error: str | None
    not_found: bool
    next_refresh_at: datetime | None
    note: str | None = None
    duration_seconds: float = 0.0
    interrupted: bool = False

    @classmethod
    def interruption(cls, run_id: int, error: str = STEPPED_DOWN) -> RefreshResult:
        return cls(run_id, "failed", None, error, False, None, interrupted=True)


RefreshListener = Callable[[str, str, RefreshResult], None]


class RefreshHandle(Protocol):
    """A refresh that is running: its run id (known before it ends), whether this caller joined
    one already running, and its result."""

    @property
    def run_id(self) -> int: ...

    @property
    def joined(self) -> bool: ...

    async def result(self, timeout: float) -> RefreshResult:
        """The result; Unavailable (with Retry-After) if it is not there within `timeout`.

        Giving up does not cancel the refresh: others may be waiting for it."""
        ...


def too_slow(what: str, timeout: float) -> Unavailable:
    return Unavailable(
        f"{what} is being fetched and took longer than {timeout:g}s; retry shortly",
        retry_after=max(1, math.ceil(timeout / 2)),
    )


@dataclass(frozen=True)
class FutureHandle:
    """A handle whose result arrives in an asyncio future (set by whoever runs the refresh)."""

    run_id: int
    joined: bool
    what: str
    future: asyncio.Future[RefreshResult]

    def joining(self) -> FutureHandle:
        return FutureHandle(self.run_id, True, self.what, self.future)

    async def result(self, timeout: float) -> RefreshResult:
        try:
            return await asyncio.wait_for(asyncio.shield(self.future), timeout)
        except TimeoutError:
            raise too_slow(self.what, timeout) from None


@runtime_checkable  # handlers receive it by dependency injection, which checks the type
class RefreshService(Protocol):
    """What the read side asks of a refresher: the local `Refresher`, or the active worker's."""

    @property
    def in_flight_count(self) -> int: ...

    def add_listener(self, listener: RefreshListener) -> None: ...

    def known_missing(self, dataset: str, key: str) -> str | None: ...

    async def running(self, run_id: int) -> tuple[str, str] | None: ...

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
        """Fetch a key (or join its refresh in flight); `since` (this process's monotonic
        clock) or `seen_run_id` (the key's newest run the reader had seen) let a refresh that
        finished after the reader looked answer it without another fetch."""
        ...

    async def force(
        self, dataset: str, key: str, accept_shrink: bool = False, trigger: Trigger = "demand"
    ) -> RefreshHandle: ...


class NegativeCache:
    """Keys the upstream said do not exist, each remembered for its dataset's negative TTL."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[float, str]] = {}

    def get(self, dataset: str, key: str) -> str | None:
        """The upstream's "not found" message while it lasts, else None."""
        entry = self._entries.get((dataset, key))
        if entry is None:
            return None
        expires, message = entry
        if time.monotonic() >= expires:
            self._entries.pop((dataset, key), None)
            return None
        return message

    def remember(self, dataset: str, key: str, message: str, ttl_seconds: float) -> None:
        self._entries[(dataset, key)] = (time.monotonic() + ttl_seconds, message)

    def forget(self, dataset: str, key: str) -> None:
        self._entries.pop((dataset, key), None)
