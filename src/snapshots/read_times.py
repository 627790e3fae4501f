"""Which keys were read and when, gathered in memory and written to Postgres in batches.

A read must stay a memory lookup; writing `last_read_at` on every read would put the
database back on the hot path. Idle retirement only needs minute precision.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from datetime import UTC, datetime

from snapshots.logs import get_logger
from snapshots.store import Store

log = get_logger(__name__)


class ReadTracker:
    """Last read time per (dataset, key) since the last drain."""

    def __init__(self) -> None:
        self._reads: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def touch(self, dataset: str, key: str) -> None:
        # A plain assignment is atomic under the GIL and costs less than a lock on every read.
        self._reads[(dataset, key)] = time.time()

    def drain(self) -> dict[tuple[str, str], datetime]:
        """The reads gathered so far, forgetting them."""
        with self._lock:
            reads, self._reads = self._reads, {}
        return {name: datetime.fromtimestamp(at, UTC) for name, at in reads.items()}

    def restore(self, reads: dict[tuple[str, str], datetime]) -> None:
        """Put back reads whose write failed, so the next flush writes them (newest wins)."""
        with self._lock:
            for name, at in reads.items():
                stamp = at.timestamp()
                if self._reads.get(name, 0.0) < stamp:
                    self._reads[name] = stamp


class ReadFlusher:
    """Writes this replica's read times to PostgreSQL every `interval_seconds` (and once at
    stop), so idle retirement and `max_keys` see the reads of every replica; a `kill -9`
    loses at most one interval of them."""

    def __init__(self, reads: ReadTracker, store: Store, interval_seconds: float) -> None:
        self._reads = reads
        self._store = store
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="read-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Write the reads gathered so far; put them back if the write fails."""
        reads = self._reads.drain()
        try:
            await self._store.touch_reads(reads)
        except Exception as exc:
            self._reads.restore(reads)
            log.warning("reads.flush_failed", error_type=type(exc).__name__, exc_info=exc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
