"""Which keys were read and when, gathered in memory and written to Postgres in batches.

A read must stay a memory lookup; writing `last_read_at` on every read would put the
database back on the hot path. Idle retirement only needs minute precision.
"""

from __future__ import annotations

import threading
from datetime import datetime

from snapshots.clock import utcnow


class ReadTracker:
    """Last read time per (dataset, key) since the last drain."""

    def __init__(self) -> None:
        self._reads: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def touch(self, dataset: str, key: str, at: datetime | None = None) -> None:
        with self._lock:
            self._reads[(dataset, key)] = at or utcnow()

    def drain(self) -> dict[tuple[str, str], datetime]:
        """The reads gathered so far, forgetting them."""
        with self._lock:
            reads, self._reads = self._reads, {}
        return reads
