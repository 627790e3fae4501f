"""Which keys were read and when, gathered in memory and written to Postgres in batches.

A read must stay a memory lookup; writing `last_read_at` on every read would put the
database back on the hot path. Idle retirement only needs minute precision.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


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
